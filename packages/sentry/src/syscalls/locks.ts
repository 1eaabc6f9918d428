/**
 * flock and fcntl's record lock commands (F_GETLK, F_SETLK, F_SETLKW and their F_OFD_ forms). The
 * lock state is in vfs/locks.ts. A request that has to wait holds a reference to the description
 * and sleeps through Task.block until the file's locks change, then tries again. So a signal ends
 * the wait with ERESTARTSYS, which becomes EINTR or a restart, and other tasks keep running.
 */
import { Errno, fail, SysError } from '../errno.js';
import type { Task } from '../kernel/task.js';
import type { FileDescription } from '../vfs/file.js';
import { O_ACCMODE, O_PATH, O_RDONLY, O_WRONLY, SEEK_CUR, SEEK_END, SEEK_SET } from '../vfs/flags.js';
import {
  F_RDLCK,
  F_UNLCK,
  F_WRLCK,
  type FileLocks,
  fileLocks,
  OFFSET_MAX,
  setWaitsFor,
  wouldDeadlock,
} from '../vfs/locks.js';
import { registerSyscall } from './table.js';

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
/** Linux ignores LOCK_MAND requests and returns 0, because such locks never worked. */
const LOCK_MAND = 32;

export const F_GETLK = 5;
export const F_SETLK = 6;
export const F_SETLKW = 7;
export const F_OFD_GETLK = 36;
export const F_OFD_SETLK = 37;
export const F_OFD_SETLKW = 38;

/** sizeof(struct flock) on x86-64, and its field offsets, from <asm-generic/fcntl.h>. */
const FLOCK_SIZE = 32;
const L_TYPE = 0;
const L_WHENCE = 2;
const L_START = 8;
const L_LEN = 16;
const L_PID = 24;

/**
 * Sleeps until the locks of `file`'s file change, then calls `attempt` with them again, until it
 * returns true. The description keeps a reference meanwhile, so that its locks are released only
 * after the wait, as on Linux.
 */
async function waitUntil(task: Task, file: FileDescription, attempt: (locks: FileLocks) => boolean): Promise<FileLocks> {
  file.incRef();
  try {
    for (;;) {
      const watched = fileLocks(task.kernel, file, true) as FileLocks;
      await task.block<void>((resolve) => watched.watch(() => resolve()));
      const locks = fileLocks(task.kernel, file, true) as FileLocks;
      if (attempt(locks)) return locks;
    }
  } finally {
    file.decRef();
  }
}

function flock(task: Task, fdBits: number, operationBits: number): number | Promise<number> {
  const operation = operationBits | 0;
  if ((operation & LOCK_MAND) !== 0) return 0;
  let type: number;
  switch (operation & ~LOCK_NB) {
    case LOCK_SH: type = F_RDLCK; break;
    case LOCK_EX: type = F_WRLCK; break;
    case LOCK_UN: type = F_UNLCK; break;
    default: return fail(Errno.EINVAL);
  }

  const file = task.fdTable.get(fdBits | 0);
  if ((file.flags & O_PATH) !== 0) fail(Errno.EBADF);
  if (type !== F_UNLCK && (file.flags & O_ACCMODE) === O_ACCMODE) fail(Errno.EBADF);

  const locks = fileLocks(task.kernel, file, type !== F_UNLCK);
  if (locks === undefined || locks.flock(file, type)) return 0;
  if ((operation & LOCK_NB) !== 0) return -Errno.EAGAIN;
  return waitUntil(task, file, (current) => current.flock(file, type)).then(() => 0);
}

/** Returns the description's file offset, or 0 for a file without one, as l_whence SEEK_CUR needs. */
function currentOffset(file: FileDescription): bigint {
  try {
    return BigInt(file.seek(0, SEEK_CUR));
  } catch (error) {
    if (error instanceof SysError) return 0n;
    throw error;
  }
}

/** Turns l_whence, l_start and l_len into an inclusive byte range, with Linux's errors. */
function lockRange(file: FileDescription, whence: number, offset: bigint, length: bigint): { start: bigint; end: bigint } {
  let start: bigint;
  switch (whence) {
    case SEEK_SET: start = 0n; break;
    case SEEK_CUR: start = currentOffset(file); break;
    case SEEK_END: start = BigInt(file.stat().size); break;
    default: return fail(Errno.EINVAL);
  }

  if (offset > OFFSET_MAX - start) fail(Errno.EOVERFLOW);
  start += offset;
  if (start < 0n) fail(Errno.EINVAL);

  // A positive length covers start onwards, a negative one the bytes before start, 0 up to the end.
  if (length > 0n) {
    if (length - 1n > OFFSET_MAX - start) fail(Errno.EOVERFLOW);
    return { start, end: start + length - 1n };
  }
  if (length < 0n) {
    const end = start - 1n;
    start += length;
    if (start < 0n) fail(Errno.EINVAL);
    return { start, end };
  }
  return { start, end: OFFSET_MAX };
}

/**
 * Runs fcntl's F_GETLK, F_SETLK, F_SETLKW and their F_OFD_ forms, with `arg` pointing to a
 * struct flock. A descriptor that is not open, or is O_PATH, fails with EBADF.
 */
export function fcntlLock(task: Task, fd: number, command: number, arg: number): number | Promise<number> {
  const file = task.fdTable.get(fd);
  if ((file.flags & O_PATH) !== 0) fail(Errno.EBADF);

  const raw = task.mm.copyIn(arg, FLOCK_SIZE);
  const type = raw.readInt16LE(L_TYPE);
  const ofd = command === F_OFD_GETLK || command === F_OFD_SETLK || command === F_OFD_SETLKW;
  const owner: object = ofd ? file : task.fdTable;
  const { start, end } = lockRange(file, raw.readInt16LE(L_WHENCE), raw.readBigInt64LE(L_START), raw.readBigInt64LE(L_LEN));
  if (ofd && raw.readInt32LE(L_PID) !== 0) fail(Errno.EINVAL);

  if (command === F_GETLK || command === F_OFD_GETLK) {
    if (type !== F_RDLCK && type !== F_WRLCK) fail(Errno.EINVAL);
    const conflict = fileLocks(task.kernel, file, false)?.findConflict(owner, type, start, end);
    if (conflict === undefined) {
      raw.writeInt16LE(F_UNLCK, L_TYPE);
    } else {
      raw.writeInt16LE(conflict.type, L_TYPE);
      raw.writeInt16LE(SEEK_SET, L_WHENCE);
      raw.writeBigInt64LE(conflict.start, L_START);
      raw.writeBigInt64LE(conflict.end === OFFSET_MAX ? 0n : conflict.end - conflict.start + 1n, L_LEN);
      // An OFD lock belongs to no process, so Linux reports its pid as -1.
      raw.writeInt32LE(conflict.ofd ? -1 : conflict.pid, L_PID);
    }
    task.mm.copyOut(arg, raw);
    return 0;
  }

  const access = file.flags & O_ACCMODE;
  if (type === F_RDLCK && (access === O_WRONLY || access === O_ACCMODE)) fail(Errno.EBADF);
  if (type === F_WRLCK && (access === O_RDONLY || access === O_ACCMODE)) fail(Errno.EBADF);
  if (type !== F_RDLCK && type !== F_WRLCK && type !== F_UNLCK) fail(Errno.EINVAL);

  const locks = fileLocks(task.kernel, file, type !== F_UNLCK);
  if (locks === undefined) return 0;
  if (type === F_UNLCK) {
    locks.setRecord(owner, F_UNLCK, start, end);
    return 0;
  }

  const lock = { owner, ofd, pid: task.tgid, type: type as typeof F_RDLCK | typeof F_WRLCK };
  const attempt = (current: FileLocks): boolean => {
    const conflict = current.findConflict(owner, type, start, end);
    if (conflict !== undefined) {
      // Linux looks for cycles among POSIX lock waits only, so a wait on an OFD lock is not followed.
      if (!ofd && !conflict.ofd) {
        if (wouldDeadlock(owner, conflict.owner)) fail(Errno.EDEADLK);
        setWaitsFor(owner, conflict.owner);
      }
      return false;
    }
    current.setRecord(owner, type, start, end, lock);
    return true;
  };

  if (command === F_SETLK || command === F_OFD_SETLK) {
    if (locks.findConflict(owner, type, start, end) !== undefined) return -Errno.EAGAIN;
    locks.setRecord(owner, type, start, end, lock);
    return 0;
  }
  if (attempt(locks)) return 0;
  return waitUntil(task, file, attempt).then(
    (current) => {
      setWaitsFor(owner, undefined);
      return afterWait(task, fd, file, owner, ofd, current);
    },
    (error: unknown) => {
      setWaitsFor(owner, undefined);
      throw error;
    },
  );
}

/**
 * Checks, after a wait, that `fd` still names `file`. When another thread closed it meanwhile,
 * the close could not release the lock taken since, so it is released here with EBADF, as Linux does.
 */
function afterWait(task: Task, fd: number, file: FileDescription, owner: object, ofd: boolean, locks: FileLocks): number {
  if (ofd) return 0;
  let current: FileDescription | undefined;
  try {
    current = task.fdTable.get(fd);
  } catch (error) {
    if (!(error instanceof SysError)) throw error;
  }
  if (current === file) return 0;
  locks.removeRecords(owner);
  return -Errno.EBADF;
}

registerSyscall('flock', flock, { args: ['fd', 'hex'] });
