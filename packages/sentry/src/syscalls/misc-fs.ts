/** umask and posix_fadvise (fadvise64): small file calls that dynamic programs make at start-up. */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { S_IFIFO, S_IFMT } from '../vfs/flags.js';
import { registerSyscall } from './table.js';

/** POSIX_FADV_NORMAL through POSIX_FADV_NOREUSE from <linux/fadvise.h>. */
const POSIX_FADV_MAX = 5;

function umask(task: Task, maskBits: number): number {
  const previous = task.fs.umask;
  task.fs.umask = maskBits & 0o777;
  return previous;
}

/** Checks the arguments and ignores the advice: it only tunes caching, which the host does. */
function fadvise64(task: Task, fd: number, _offset: number, length: number, adviceBits: number): number {
  const file = task.fdTable.get(fd);
  if ((file.stat().mode & S_IFMT) === S_IFIFO) fail(Errno.ESPIPE);
  const advice = adviceBits | 0;
  if (length < 0 || advice < 0 || advice > POSIX_FADV_MAX) fail(Errno.EINVAL);
  return 0;
}

registerSyscall('umask', umask, { args: ['hex'] });
registerSyscall('fadvise64', fadvise64, { args: ['fd', 'int', 'int', 'int'] });
