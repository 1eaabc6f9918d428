/** Pieces of the ptrace platform's own tests that other platforms do not share. */
import * as fs from 'node:fs';

export const PAGE = 4096;
export const CODE = 0x10000000;
export const DATA = 0x20000000;

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
