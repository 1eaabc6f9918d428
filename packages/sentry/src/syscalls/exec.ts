/** execve and execveat (see kernel/exec.ts). */
import { Errno, fail, SysError } from '../errno.js';
import { execve } from '../kernel/exec.js';
import type { Task } from '../kernel/task.js';
import { AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW } from '../vfs/flags.js';
import { registerSyscall } from './table.js';

/** Maximum length of one argument or environment string (MAX_ARG_STRLEN, 32 pages). */
const MAX_ARG_STRLEN = 32 * 4096;

/** Most argument and environment strings one execve takes (MAX_ARG_STRINGS). */
const MAX_ARG_STRINGS = 0x7fffffff;

/** Total size of arguments and environment: a quarter of the default 8 MiB stack, as Linux allows. */
const MAX_ARG_BYTES = 2 * 1024 * 1024;

/** Reads a NULL-terminated array of string pointers, such as argv; a NULL array is empty. */
function readStrings(task: Task, addr: number, budget: { bytes: number }): string[] {
  const strings: string[] = [];
  if (addr === 0) return strings;
  for (let index = 0; index < MAX_ARG_STRINGS; index++) {
    const pointer = Number(task.mm.copyIn(addr + index * 8, 8).readBigUInt64LE(0));
    if (pointer === 0) break;
    let text: string;
    try {
      text = task.mm.readCString(pointer, MAX_ARG_STRLEN);
    } catch (error) {
      if (error instanceof SysError && error.errno === Errno.ENAMETOOLONG) fail(Errno.E2BIG);
      throw error;
    }
    budget.bytes -= text.length + 1 + 8;
    if (budget.bytes < 0) fail(Errno.E2BIG);
    strings.push(text);
  }
  return strings;
}

function execveat(task: Task, dirfd: number, pathAddr: number, argvAddr: number, envpAddr: number, flagBits: number): Promise<number> {
  const flags = flagBits | 0;
  if ((flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) !== 0) fail(Errno.EINVAL);
  const path = task.mm.readCString(pathAddr, 4096);
  const budget = { bytes: MAX_ARG_BYTES };
  const argv = readStrings(task, argvAddr, budget);
  const envp = readStrings(task, envpAddr, budget);
  return execve(task, {
    path,
    dirfd: dirfd | 0,
    argv,
    envp,
    emptyPath: (flags & AT_EMPTY_PATH) !== 0,
    noFollow: (flags & AT_SYMLINK_NOFOLLOW) !== 0,
  });
}

registerSyscall('execve', (task, path, argv, envp) => execveat(task, AT_FDCWD, path, argv, envp, 0), {
  args: ['path', 'ptr', 'ptr'],
  support: 'partial',
  note: 'set-user-ID bits are ignored',
});
registerSyscall('execveat', execveat, { args: ['fd', 'path', 'ptr', 'ptr', 'flags'], support: 'partial', note: 'set-user-ID bits are ignored' });
