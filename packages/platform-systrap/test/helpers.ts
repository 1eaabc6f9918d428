/** Pieces of the systrap tests that other platforms do not share. */
import * as fs from 'node:fs';
import { Access, createPlatform } from '@tsvisor/platform-api';
import type { Platform } from '@tsvisor/platform-api';
import { ScratchFile } from '@tsvisor/platform-api/testing';
import '../src/index.js';
import type { SystrapAddressSpace } from '../src/index.js';

export const PAGE = 4096;
export const CODE = 0x10000000;

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

/** A platform with one address space whose code page contains `code`. */
export function withCode(code: number[]): { platform: Platform; as: SystrapAddressSpace; file: ScratchFile } {
  const platform = createPlatform('systrap');
  const file = new ScratchFile(16 * PAGE);
  file.write(0, code);
  const as = platform.newAddressSpace() as SystrapAddressSpace;
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  return { platform, as, file };
}
