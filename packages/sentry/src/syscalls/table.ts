/**
 * The system call table: one entry per x86-64 system call number, with its handler and how fully
 * it is supported. Each family file in this directory (read-write.ts, mmap.ts, ...) registers its
 * calls when imported; index.ts imports them all. The support levels and notes are data, so the
 * coverage table in docs/ is generated from this table.
 */
import type { Task } from '../kernel/task.js';
import { Sys, type SyscallName } from './numbers.js';

/**
 * A system call handler. Arguments are the six argument registers as signed 64-bit integers in
 * JavaScript numbers (see Registers.get). It returns the result, a negative errno, or a promise of
 * either when the call blocks. Helpers may throw SysError instead of returning -errno.
 */
export type SyscallHandler = (
  task: Task,
  a0: number,
  a1: number,
  a2: number,
  a3: number,
  a4: number,
  a5: number,
) => number | Promise<number>;

export type SupportLevel = 'full' | 'partial' | 'unimplemented';

/** How `--strace` prints one argument. */
export type ArgFormat = 'int' | 'hex' | 'fd' | 'path' | 'string' | 'buffer' | 'ptr' | 'flags' | 'signal';

export interface SyscallEntry {
  readonly nr: number;
  readonly name: SyscallName;
  readonly handler?: SyscallHandler;
  readonly support: SupportLevel;
  /** What is missing, for partial support, or why a call is deliberately unimplemented. */
  readonly note?: string;
  /** Argument formats for `--strace`; omitted arguments are not printed. */
  readonly args?: readonly ArgFormat[];
}

export const syscallTable: Array<SyscallEntry | undefined> = [];

export interface RegisterOptions {
  readonly support?: SupportLevel;
  readonly note?: string;
  readonly args?: readonly ArgFormat[];
}

/** Registers the handler of one system call. Registering a name twice is a programming error. */
export function registerSyscall(name: SyscallName, handler: SyscallHandler, options: RegisterOptions = {}): void {
  const nr = Sys[name];
  if (syscallTable[nr]?.handler !== undefined) {
    throw new Error(`system call ${name} is registered twice`);
  }
  syscallTable[nr] = { nr, name, handler, support: options.support ?? 'full', note: options.note, args: options.args };
}

/** Records a call that deliberately returns ENOSYS, with the reason. */
export function registerUnimplemented(name: SyscallName, note: string): void {
  const nr = Sys[name];
  syscallTable[nr] = { nr, name, support: 'unimplemented', note };
}

const namesByNumber: string[] = [];
for (const [name, nr] of Object.entries(Sys)) namesByNumber[nr] = name;

/** Returns the name of a system call number, such as "openat", or "syscall_N" when unknown. */
export function syscallName(nr: number): string {
  return namesByNumber[nr] ?? `syscall_${nr}`;
}
