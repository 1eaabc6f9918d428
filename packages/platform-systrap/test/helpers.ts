/** Shared pieces of the systrap tests. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Access, Registers, createPlatform } from '@tsvisor/platform-api';
import type { Platform } from '@tsvisor/platform-api';
import '../src/index.js';
import type { SystrapAddressSpace } from '../src/index.js';

export const PAGE = 4096;
export const CODE = 0x10000000;

/** A file in /dev/shm, unlinked at once, to map code and data from. */
export class ScratchFile {
  readonly fd: number;

  constructor(size: number) {
    const name = path.join('/dev/shm', `tsvisor-systrap-test-${process.pid}-${randomBytes(6).toString('hex')}`);
    this.fd = fs.openSync(name, 'wx+', 0o600);
    fs.unlinkSync(name);
    fs.ftruncateSync(this.fd, size);
  }

  write(offset: number, bytes: number[]): void {
    fs.writeSync(this.fd, Buffer.from(bytes), 0, bytes.length, offset);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Pids of processes on this host that map or hold a stub's shared region (memfd "tsvisor-systrap-stub"). */
export function holdersOfStubMemfds(): number[] {
  const holders: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const maps = fs.readFileSync(`/proc/${entry}/maps`, 'utf8');
      const fds = fs.readdirSync(`/proc/${entry}/fd`).map((fd) => {
        try {
          return fs.readlinkSync(`/proc/${entry}/fd/${fd}`);
        } catch {
          return '';
        }
      });
      if (maps.includes('tsvisor-systrap-stub') || fds.some((target) => target.includes('tsvisor-systrap-stub'))) {
        holders.push(Number(entry));
      }
    } catch {
      // The process ended while we looked.
    }
  }
  return holders;
}

export function freshRegisters(rip: number): Registers {
  const regs = new Registers();
  regs.reset();
  regs.rip = rip;
  return regs;
}

/** A platform with one address space whose code page contains `code`. */
export function withCode(code: number[]): { platform: Platform; as: SystrapAddressSpace; file: ScratchFile } {
  const platform = createPlatform('systrap');
  const file = new ScratchFile(16 * PAGE);
  file.write(0, code);
  const as = platform.newAddressSpace() as SystrapAddressSpace;
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  return { platform, as, file };
}
