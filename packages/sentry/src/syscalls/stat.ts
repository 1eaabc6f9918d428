/** stat, lstat, fstat, newfstatat, statx, and the access checks access, faccessat, faccessat2. */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import type { FileStat } from '../vfs/file.js';
import {
  AT_EACCESS,
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_NO_AUTOMOUNT,
  AT_STATX_SYNC_TYPE,
  AT_SYMLINK_NOFOLLOW,
  isDir,
  isRegular,
  O_ACCMODE,
  O_PATH,
  O_RDONLY,
} from '../vfs/flags.js';
import { encodeStat, encodeStatx } from '../vfs/stat.js';
import { encodeStatfs } from '../vfs/statfs.js';
import { readPath } from '../vfs/user-path.js';
import { registerSyscall } from './table.js';

/** statx's AT_STATX_SYNC_TYPE values must not both be set (AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC). */
const AT_STATX_INVALID_SYNC = 0x6000;

/** Returns the attributes of the file dirfd/path names, for the *at calls' flags. */
function statAt(task: Task, fd: number, addr: number, flags: number): FileStat {
  // dirfd is a C int: only the low 32 bits of the register count.
  const dirfd = fd | 0;
  const path = readPath(task, addr);
  if (path.length === 0 && flags & AT_EMPTY_PATH) {
    if (dirfd === AT_FDCWD) return task.kernel.vfs.stat(task.fs, AT_FDCWD, '.', true, task);
    return task.fdTable.get(dirfd).stat();
  }
  return task.kernel.vfs.stat(task.fs, dirfd, path, (flags & AT_SYMLINK_NOFOLLOW) === 0, task);
}

function stat(task: Task, addr: number, statAddr: number): number {
  task.mm.copyOut(statAddr, encodeStat(statAt(task, AT_FDCWD, addr, 0)));
  return 0;
}

function lstat(task: Task, addr: number, statAddr: number): number {
  task.mm.copyOut(statAddr, encodeStat(statAt(task, AT_FDCWD, addr, AT_SYMLINK_NOFOLLOW)));
  return 0;
}

function fstat(task: Task, fd: number, statAddr: number): number {
  task.mm.copyOut(statAddr, encodeStat(task.fdTable.get(fd | 0).stat()));
  return 0;
}

function newfstatat(task: Task, dirfd: number, addr: number, statAddr: number, flagBits: number): number {
  const flags = flagBits | 0;
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH)) fail(Errno.EINVAL);
  task.mm.copyOut(statAddr, encodeStat(statAt(task, dirfd, addr, flags)));
  return 0;
}

function statx(task: Task, dirfd: number, addr: number, flagBits: number, _mask: number, statxAddr: number): number {
  const flags = flagBits | 0;
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE)) fail(Errno.EINVAL);
  if ((flags & AT_STATX_SYNC_TYPE) === AT_STATX_INVALID_SYNC) fail(Errno.EINVAL);
  task.mm.copyOut(statxAddr, encodeStatx(statAt(task, dirfd, addr, flags)));
  return 0;
}

const R_OK = 4;
const W_OK = 2;
const X_OK = 1;

/**
 * Checks `mode` (R_OK | W_OK | X_OK, or F_OK = 0) against the file's permission bits for the
 * task's ids, as Linux does for an unprivileged user; uid 0 passes every check except X_OK on a
 * file with no execute bit. Writes fail with EROFS on the read-only host view.
 */
function checkAccess(task: Task, dirfd: number, addr: number, modeBits: number, flagBits: number): number {
  const mode = modeBits | 0;
  const flags = flagBits | 0;
  if (mode & ~(R_OK | W_OK | X_OK)) fail(Errno.EINVAL);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EACCESS | AT_EMPTY_PATH)) fail(Errno.EINVAL);
  const st = statAt(task, dirfd, addr, flags);
  if (mode === 0) return 0;

  // access(2) checks with the real ids unless AT_EACCESS requests the effective ones.
  const uid = flags & AT_EACCESS ? task.creds.euid : task.creds.uid;
  const gid = flags & AT_EACCESS ? task.creds.egid : task.creds.gid;
  if (mode & W_OK && (isRegular(st.mode) || isDir(st.mode))) fail(Errno.EROFS);
  if (uid === 0) {
    if (mode & X_OK && !isDir(st.mode) && (st.mode & 0o111) === 0) fail(Errno.EACCES);
    return 0;
  }
  // The owner's, the group's or the others' permission bits, whichever class the caller is in.
  let shift = 0;
  if (uid === st.uid) shift = 6;
  else if (gid === st.gid) shift = 3;
  const granted = (st.mode >> shift) & 0o7;
  if ((mode & granted) !== mode) fail(Errno.EACCES);
  return 0;
}

function access(task: Task, addr: number, mode: number): number {
  return checkAccess(task, AT_FDCWD, addr, mode, 0);
}

// faccessat(2) as a system call has no flags argument; the libc wrapper's flags go to faccessat2.
function faccessat(task: Task, dirfd: number, addr: number, mode: number): number {
  return checkAccess(task, dirfd, addr, mode, 0);
}

function faccessat2(task: Task, dirfd: number, addr: number, mode: number, flags: number): number {
  return checkAccess(task, dirfd, addr, mode, flags);
}

function statfs(task: Task, addr: number, bufferAddr: number): number {
  const path = readPath(task, addr);
  task.mm.copyOut(bufferAddr, encodeStatfs(task.kernel.vfs.statfs(task.fs, AT_FDCWD, path, task)));
  return 0;
}

function fstatfs(task: Task, fd: number, bufferAddr: number): number {
  const file = task.fdTable.get(fd | 0);
  task.mm.copyOut(bufferAddr, encodeStatfs(task.kernel.vfs.fstatfs(task.fs, file, task)));
  return 0;
}

/**
 * Calls that change a file's attributes (mode, owner, times, size). The host view is read-only, so
 * once the file is found they fail with EROFS, as on a read-only mount.
 */

function changePathAttributes(task: Task, dirfd: number, addr: number, flags: number): number {
  statAt(task, dirfd, addr, flags);
  return fail(Errno.EROFS);
}

function changeFdAttributes(task: Task, fd: number): number {
  const file = task.fdTable.get(fd | 0);
  if (file.flags & O_PATH) fail(Errno.EBADF);
  return fail(Errno.EROFS);
}

function chmod(task: Task, addr: number): number {
  return changePathAttributes(task, AT_FDCWD, addr, 0);
}

function fchmodat(task: Task, dirfd: number, addr: number): number {
  return changePathAttributes(task, dirfd, addr, 0);
}

function fchmod(task: Task, fd: number): number {
  return changeFdAttributes(task, fd);
}

function chown(task: Task, addr: number): number {
  return changePathAttributes(task, AT_FDCWD, addr, 0);
}

function lchown(task: Task, addr: number): number {
  return changePathAttributes(task, AT_FDCWD, addr, AT_SYMLINK_NOFOLLOW);
}

function fchownat(task: Task, dirfd: number, addr: number, _uid: number, _gid: number, flagBits: number): number {
  const flags = flagBits | 0;
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) fail(Errno.EINVAL);
  return changePathAttributes(task, dirfd, addr, flags);
}

function fchown(task: Task, fd: number): number {
  return changeFdAttributes(task, fd);
}

function utimensat(task: Task, dirfd: number, addr: number, _times: number, flagBits: number): number {
  const flags = flagBits | 0;
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) fail(Errno.EINVAL);
  // A NULL path changes the file dirfd refers to (futimens).
  if (addr === 0) return changeFdAttributes(task, dirfd);
  return changePathAttributes(task, dirfd, addr, flags);
}

function futimesat(task: Task, dirfd: number, addr: number): number {
  if (addr === 0) return changeFdAttributes(task, dirfd);
  return changePathAttributes(task, dirfd, addr, 0);
}

function utimes(task: Task, addr: number): number {
  return changePathAttributes(task, AT_FDCWD, addr, 0);
}

function truncate(task: Task, addr: number, length: number): number {
  if (length < 0) fail(Errno.EINVAL);
  const st = statAt(task, AT_FDCWD, addr, 0);
  if (isDir(st.mode)) fail(Errno.EISDIR);
  if (!isRegular(st.mode)) fail(Errno.EINVAL);
  return fail(Errno.EROFS);
}

// ftruncate needs a regular file open for writing, which the read-only host view never gives.
function ftruncate(task: Task, fd: number, length: number): number {
  const file = task.fdTable.get(fd | 0);
  if (file.flags & O_PATH) fail(Errno.EBADF);
  if (length < 0 || (file.flags & O_ACCMODE) === O_RDONLY || !isRegular(file.stat().mode)) fail(Errno.EINVAL);
  return fail(Errno.EROFS);
}

registerSyscall('stat', stat, { args: ['path', 'ptr'] });
registerSyscall('lstat', lstat, { args: ['path', 'ptr'] });
registerSyscall('fstat', fstat, { args: ['fd', 'ptr'] });
registerSyscall('newfstatat', newfstatat, { args: ['fd', 'path', 'ptr', 'flags'] });
registerSyscall('statx', statx, {
  args: ['fd', 'path', 'flags', 'hex', 'ptr'],
  support: 'partial',
  note: 'reports STATX_BASIC_STATS only: no birth time, attributes or mount id',
});
registerSyscall('statfs', statfs, { args: ['path', 'ptr'] });
registerSyscall('fstatfs', fstatfs, { args: ['fd', 'ptr'] });
const readOnlyNote = 'the host view is read-only: fails with EROFS once the file is found';
registerSyscall('chmod', chmod, { args: ['path', 'int'], note: readOnlyNote });
registerSyscall('fchmod', fchmod, { args: ['fd', 'int'], note: readOnlyNote });
registerSyscall('fchmodat', fchmodat, { args: ['fd', 'path', 'int'], note: readOnlyNote });
registerSyscall('chown', chown, { args: ['path', 'int', 'int'], note: readOnlyNote });
registerSyscall('lchown', lchown, { args: ['path', 'int', 'int'], note: readOnlyNote });
registerSyscall('fchown', fchown, { args: ['fd', 'int', 'int'], note: readOnlyNote });
registerSyscall('fchownat', fchownat, { args: ['fd', 'path', 'int', 'int', 'flags'], note: readOnlyNote });
registerSyscall('utimensat', utimensat, { args: ['fd', 'path', 'ptr', 'flags'], note: readOnlyNote });
registerSyscall('futimesat', futimesat, { args: ['fd', 'path', 'ptr'], note: readOnlyNote });
registerSyscall('utimes', utimes, { args: ['path', 'ptr'], note: readOnlyNote });
registerSyscall('utime', utimes, { args: ['path', 'ptr'], note: readOnlyNote });
registerSyscall('truncate', truncate, { args: ['path', 'int'], note: readOnlyNote });
registerSyscall('ftruncate', ftruncate, { args: ['fd', 'int'], note: readOnlyNote });
const accessNote = 'supplementary groups and capabilities other than uid 0 are not considered';
registerSyscall('access', access, { args: ['path', 'int'], support: 'partial', note: accessNote });
registerSyscall('faccessat', faccessat, { args: ['fd', 'path', 'int'], support: 'partial', note: accessNote });
registerSyscall('faccessat2', faccessat2, { args: ['fd', 'path', 'int', 'flags'], support: 'partial', note: accessNote });
