/** Shared pieces of the ptrace platform's own tests. */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Registers } from '@tsvisor/platform-api';

export const PAGE = 4096;
export const CODE = 0x10000000;
export const DATA = 0x20000000;

/** A file in /dev/shm, unlinked at once, that code and data are written into and mapped from. */
export class ScratchFile {
  readonly fd: number;

  constructor(size = 16 * PAGE) {
    const file = `/dev/shm/tsvisor-ptrace-test-${process.pid}-${randomBytes(6).toString('hex')}`;
    this.fd = fs.openSync(file, 'wx+', 0o600);
    fs.unlinkSync(file);
    fs.ftruncateSync(this.fd, size);
  }

  write(offset: number, bytes: number[]): void {
    fs.writeSync(this.fd, Buffer.from(bytes), 0, bytes.length, offset);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

export function freshRegisters(rip: number): Registers {
  const regs = new Registers();
  regs.reset();
  regs.rip = rip;
  return regs;
}

/** Returns the lines of /proc/<pid>/maps, or [] once the process is gone. */
export function mapsOf(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n');
  } catch {
    return [];
  }
}

/** Returns the thread ids of a process, or [] once it is gone. */
export function threadsOf(pid: number): number[] {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [];
  }
}

/** Returns whether a process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
