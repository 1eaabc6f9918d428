/** open, openat, openat2 and creat, resolved by the VFS and installed in the descriptor table. */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { AT_FDCWD, O_CLOEXEC, O_CREAT, O_LARGEFILE, O_TMPFILE, O_TRUNC, O_WRONLY } from '../vfs/flags.js';
import { readPath } from '../vfs/user-path.js';
import { registerSyscall } from './table.js';

/** Open flags that Linux x86-64 defines (VALID_OPEN_FLAGS); openat2 rejects other bits with EINVAL. */
const VALID_OPEN_FLAGS = 0o37777703;

/** openat2's struct open_how: flags, mode, resolve (3 × u64). */
const OPEN_HOW_SIZE = 24;

/** openat2 resolve flags from <linux/openat2.h>. */
const RESOLVE_ALL = 0x3f;

function doOpen(task: Task, dirfd: number, addr: number, flags: number, mode: number): number {
  const path = readPath(task, addr);
  const file = task.kernel.vfs.open(task.fs, dirfd, path, flags | O_LARGEFILE, mode, task);
  try {
    return task.fdTable.install(file, (flags & O_CLOEXEC) !== 0);
  } catch (error) {
    file.decRef();
    throw error;
  }
}

// open(2) ignores unknown flag bits, which openat2 rejects.
function openat(task: Task, dirfd: number, addr: number, flags: number, mode: number): number {
  // dirfd and flags are C ints and mode is a umode_t: only their low bits count.
  return doOpen(task, dirfd | 0, addr, flags & VALID_OPEN_FLAGS, mode & 0xffff);
}

function open(task: Task, addr: number, flags: number, mode: number): number {
  return openat(task, AT_FDCWD, addr, flags, mode);
}

function creat(task: Task, addr: number, mode: number): number {
  return openat(task, AT_FDCWD, addr, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

// NOTE: the RESOLVE_* restrictions are checked for validity but not enforced yet: every lookup
// behaves as with resolve = 0, which is already confined to the sandbox root.
function openat2(task: Task, dirfd: number, addr: number, howAddr: number, size: number): number {
  if (size < OPEN_HOW_SIZE) fail(Errno.EINVAL);
  if (size > 4096) fail(Errno.E2BIG);
  const raw = task.mm.copyIn(howAddr, size);
  for (let i = OPEN_HOW_SIZE; i < size; i++) if (raw[i] !== 0) fail(Errno.E2BIG);
  const flags = raw.readBigUInt64LE(0);
  const mode = raw.readBigUInt64LE(8);
  const resolve = raw.readBigUInt64LE(16);
  if (flags & ~BigInt(VALID_OPEN_FLAGS) || resolve & ~BigInt(RESOLVE_ALL)) fail(Errno.EINVAL);
  const openFlags = Number(flags);
  const creating = (openFlags & O_CREAT) !== 0 || (openFlags & O_TMPFILE) === O_TMPFILE;
  if (mode & ~0o7777n || (mode !== 0n && !creating)) fail(Errno.EINVAL);
  return doOpen(task, dirfd | 0, addr, openFlags, Number(mode));
}

registerSyscall('open', open, { args: ['path', 'flags', 'int'] });
registerSyscall('openat', openat, { args: ['fd', 'path', 'flags', 'int'] });
registerSyscall('creat', creat, { args: ['path', 'int'] });
registerSyscall('openat2', openat2, { args: ['fd', 'path', 'ptr', 'int'], support: 'partial', note: 'RESOLVE_* flags are accepted but not enforced' });
