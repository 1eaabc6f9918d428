/** close, close_range, dup, dup2, dup3 and fcntl's descriptor, status flag and (through locks.ts) record lock commands. */
import { Errno, fail } from '../errno.js';
import { dropFdTable, holdFdTable, userCount } from '../kernel/shared-resources.js';
import type { Task } from '../kernel/task.js';
import {
  F_DUPFD,
  F_DUPFD_CLOEXEC,
  F_GETFD,
  F_GETFL,
  F_SETFD,
  F_SETFL,
  FD_CLOEXEC,
  O_CLOEXEC,
  O_LARGEFILE,
  SETFL_MASK,
} from '../vfs/flags.js';
import { F_GETLK, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_SETLK, F_SETLKW, fcntlLock } from './locks.js';
import { registerSyscall } from './table.js';

// Descriptor and command arguments are C ints: only the low 32 bits of the registers count.
function close(task: Task, fd: number): number {
  task.fdTable.close(fd | 0);
  return 0;
}

const CLOSE_RANGE_UNSHARE = 0x2;
const CLOSE_RANGE_CLOEXEC = 0x4;

/**
 * close_range: closes, or with CLOSE_RANGE_CLOEXEC marks close-on-exec, every open descriptor from
 * `first` to `last`. CLOSE_RANGE_UNSHARE first gives the caller a private copy of a descriptor
 * table it shares with other tasks (CLONE_FILES), so that they keep their descriptors.
 */
function closeRange(task: Task, first: number, last: number, flags: number): number {
  first >>>= 0;
  last >>>= 0;
  flags >>>= 0;
  if ((flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) !== 0 || first > last) fail(Errno.EINVAL);

  if ((flags & CLOSE_RANGE_UNSHARE) !== 0 && userCount(task.fdTable) > 1) {
    const shared = task.fdTable;
    const copy = shared.fork();
    holdFdTable(copy);
    task.fdTable = copy;
    dropFdTable(shared);
  }

  const table = task.fdTable;
  for (const fd of table.openFds()) {
    if (fd < first || fd > last) continue;
    if ((flags & CLOSE_RANGE_CLOEXEC) !== 0) table.setCloexec(fd, true);
    else table.close(fd);
  }
  return 0;
}

function dup(task: Task, fd: number): number {
  return task.fdTable.dup(fd | 0);
}

function dup2(task: Task, oldFd: number, newFd: number): number {
  return task.fdTable.dup2(oldFd | 0, newFd | 0);
}

function dup3(task: Task, oldFd: number, newFd: number, flags: number): number {
  if ((flags | 0) & ~O_CLOEXEC) fail(Errno.EINVAL);
  if ((oldFd | 0) === (newFd | 0)) fail(Errno.EINVAL);
  return task.fdTable.dup2(oldFd | 0, newFd | 0, (flags & O_CLOEXEC) !== 0);
}

function fcntl(task: Task, fdBits: number, commandBits: number, arg: number): number | Promise<number> {
  const table = task.fdTable;
  const fd = fdBits | 0;
  const command = commandBits | 0;
  switch (command) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
      // The argument is an int: Linux compares it as unsigned against RLIMIT_NOFILE.
      if ((arg | 0) < 0) fail(Errno.EINVAL);
      return table.dup(fd, arg | 0, command === F_DUPFD_CLOEXEC);
    case F_GETFD:
      return table.getCloexec(fd) ? FD_CLOEXEC : 0;
    case F_SETFD:
      table.setCloexec(fd, (arg & FD_CLOEXEC) !== 0);
      return 0;
    case F_GETFL:
      return table.get(fd).flags | O_LARGEFILE;
    case F_SETFL: {
      const file = table.get(fd);
      file.flags = (file.flags & ~SETFL_MASK) | (arg & SETFL_MASK);
      return 0;
    }
    case F_GETLK:
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_GETLK:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
      return fcntlLock(task, fd, command, arg);
    default:
      // Validate the descriptor first, as Linux does, so a bad fd is still EBADF.
      table.get(fd);
      return fail(Errno.EINVAL);
  }
}

registerSyscall('close', close, { args: ['fd'] });
registerSyscall('close_range', closeRange, { args: ['int', 'int', 'flags'] });
registerSyscall('dup', dup, { args: ['fd'] });
registerSyscall('dup2', dup2, { args: ['fd', 'fd'] });
registerSyscall('dup3', dup3, { args: ['fd', 'fd', 'flags'] });
registerSyscall('fcntl', fcntl, {
  args: ['fd', 'int', 'hex'],
  support: 'partial',
  note: 'F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_SETFL and the record locks (F_GETLK, F_SETLK, F_SETLKW, F_OFD_*) only; no leases, owners, seals or pipe sizes',
});
