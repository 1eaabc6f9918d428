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
import type { AttributeChange } from '../vfs/filesystem.js';
import { nowNs } from '../vfs/tmpfs.js';
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
 * file with no execute bit. Writes fail with EROFS on the read-only host view, not on tmpfs.
 */
function checkAccess(task: Task, dirfd: number, addr: number, modeBits: number, flagBits: number): number {
  const mode = modeBits | 0;
  const flags = flagBits | 0;
  if (mode & ~(R_OK | W_OK | X_OK)) fail(Errno.EINVAL);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EACCESS | AT_EMPTY_PATH)) fail(Errno.EINVAL);
  const st = statAt(task, dirfd, addr, flags);
  if (mode === 0) return 0;
  const path = readPath(task, addr);
  const onFile = path.length === 0 && flags & AT_EMPTY_PATH && (dirfd | 0) !== AT_FDCWD;
  const writable = onFile ? isChangeable(task.fdTable.get(dirfd | 0)) : task.kernel.vfs.resolve(task.fs, dirfd | 0, path, (flags & AT_SYMLINK_NOFOLLOW) === 0, task).mount.fs.create !== undefined;

  // access(2) checks with the real ids unless AT_EACCESS requests the file system ids, which
  // follow the effective ones.
  const uid = flags & AT_EACCESS ? task.creds.fsuid : task.creds.uid;
  const gid = flags & AT_EACCESS ? task.creds.fsgid : task.creds.gid;
  if (mode & W_OK && !writable && (isRegular(st.mode) || isDir(st.mode))) fail(Errno.EROFS);
  if (uid === 0) {
    if (mode & X_OK && !isDir(st.mode) && (st.mode & 0o111) === 0) fail(Errno.EACCES);
    return 0;
  }
  // The owner's, the group's or the others' permission bits, whichever class the caller is in.
  let shift = 0;
  if (uid === st.uid) shift = 6;
  else if (gid === st.gid || task.creds.groups.includes(st.gid)) shift = 3;
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
 * Calls that change a file's attributes (mode, owner, times, size). They work on tmpfs files; on the
 * read-only host view they fail with EROFS once the file is found, as on a read-only mount.
 */

/** A file whose attributes can change: a tmpfs description. */
interface ChangeableFile {
  setAttributes(change: AttributeChange): void;
}

function isChangeable(file: object): file is ChangeableFile {
  return typeof (file as Partial<ChangeableFile>).setAttributes === 'function';
}

/** Finds the file dirfd/path names and returns how to change it, or fails with EROFS on a read-only mount. */
function changeTarget(task: Task, fd: number, addr: number, flags: number): { stat: FileStat; apply: (change: AttributeChange) => void } {
  const dirfd = fd | 0;
  const path = readPath(task, addr);
  if (path.length === 0 && flags & AT_EMPTY_PATH && dirfd !== AT_FDCWD) return fdTarget(task, dirfd, true);
  const resolved = task.kernel.vfs.resolve(task.fs, dirfd, path, (flags & AT_SYMLINK_NOFOLLOW) === 0, task);
  const fs = resolved.mount.fs;
  if (resolved.file !== undefined && isChangeable(resolved.file)) {
    const file = resolved.file;
    return { stat: resolved.stat, apply: (change) => file.setAttributes(change) };
  }
  if (fs.setAttributes === undefined || resolved.file !== undefined) return fail(Errno.EROFS);
  return { stat: resolved.stat, apply: (change) => fs.setAttributes!(resolved.relative, change) };
}

function fdTarget(task: Task, fd: number, allowPath: boolean): { stat: FileStat; apply: (change: AttributeChange) => void } {
  const file = task.fdTable.get(fd);
  if (!allowPath && file.flags & O_PATH) fail(Errno.EBADF);
  if (!isChangeable(file)) return fail(Errno.EROFS);
  return { stat: file.stat(), apply: (change) => file.setAttributes(change) };
}

/** Only the owner (or uid 0) may change a file's mode and times to given values. */
function checkOwner(task: Task, st: FileStat): void {
  if (task.creds.euid !== 0 && task.creds.euid !== st.uid) fail(Errno.EPERM);
}

function changeMode(task: Task, target: ReturnType<typeof changeTarget>, mode: number): number {
  checkOwner(task, target.stat);
  target.apply({ mode: mode & 0o7777 });
  return 0;
}

/** Without uid 0, only the group can change, and only by the owner (supplementary groups are not considered). */
function changeOwner(task: Task, target: ReturnType<typeof changeTarget>, uidBits: number, gidBits: number): number {
  const uid = uidBits | 0;
  const gid = gidBits | 0;
  if (task.creds.euid !== 0) {
    if (uid !== -1 && uid !== target.stat.uid) fail(Errno.EPERM);
    if (gid !== -1 && (task.creds.euid !== target.stat.uid || gid !== task.creds.egid)) fail(Errno.EPERM);
  }
  target.apply({ uid, gid });
  return 0;
}

/** utimensat's special tv_nsec values. */
const UTIME_NOW = (1 << 30) - 1;
const UTIME_OMIT = (1 << 30) - 2;

/** Reads the two times at `addr` (timespecs, timevals or a utimbuf), or "now" for both when NULL. */
function readTimes(task: Task, addr: number, kind: 'timespec' | 'timeval' | 'utimbuf'): AttributeChange {
  const now = nowNs();
  if (addr === 0) return { atimeNs: now, mtimeNs: now };
  const change: AttributeChange = {};
  const size = kind === 'utimbuf' ? 8 : 16;
  const raw = task.mm.copyIn(addr, size * 2);
  const keys = ['atimeNs', 'mtimeNs'] as const;
  for (let i = 0; i < 2; i++) {
    if (kind === 'utimbuf') {
      change[keys[i]] = raw.readBigInt64LE(i * 8) * 1_000_000_000n;
      continue;
    }
    const seconds = raw.readBigInt64LE(i * 16);
    const fraction = raw.readBigInt64LE(i * 16 + 8);
    if (kind === 'timespec' && fraction === BigInt(UTIME_OMIT)) continue;
    if (kind === 'timespec' && fraction === BigInt(UTIME_NOW)) {
      change[keys[i]] = now;
      continue;
    }
    const limit = kind === 'timespec' ? 1_000_000_000n : 1_000_000n;
    if (fraction < 0n || fraction >= limit) fail(Errno.EINVAL);
    change[keys[i]] = seconds * 1_000_000_000n + (kind === 'timespec' ? fraction : fraction * 1000n);
  }
  return change;
}

function changeTimes(task: Task, target: ReturnType<typeof changeTarget>, change: AttributeChange, explicit: boolean): number {
  // Setting both times to now only needs write access; explicit times need ownership.
  if (explicit) checkOwner(task, target.stat);
  target.apply(change);
  return 0;
}

function chmod(task: Task, addr: number, mode: number): number {
  return changeMode(task, changeTarget(task, AT_FDCWD, addr, 0), mode);
}

function fchmodat(task: Task, dirfd: number, addr: number, mode: number): number {
  return changeMode(task, changeTarget(task, dirfd, addr, 0), mode);
}

function fchmod(task: Task, fd: number, mode: number): number {
  return changeMode(task, fdTarget(task, fd | 0, false), mode);
}

function chown(task: Task, addr: number, uid: number, gid: number): number {
  return changeOwner(task, changeTarget(task, AT_FDCWD, addr, 0), uid, gid);
}

function lchown(task: Task, addr: number, uid: number, gid: number): number {
  return changeOwner(task, changeTarget(task, AT_FDCWD, addr, AT_SYMLINK_NOFOLLOW), uid, gid);
}

function fchownat(task: Task, dirfd: number, addr: number, uid: number, gid: number, flagBits: number): number {
  const flags = flagBits | 0;
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) fail(Errno.EINVAL);
  return changeOwner(task, changeTarget(task, dirfd, addr, flags), uid, gid);
}

function fchown(task: Task, fd: number, uid: number, gid: number): number {
  return changeOwner(task, fdTarget(task, fd | 0, false), uid, gid);
}

function utimensat(task: Task, dirfd: number, addr: number, timesAddr: number, flagBits: number): number {
  const flags = flagBits | 0;
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) fail(Errno.EINVAL);
  const change = readTimes(task, timesAddr, 'timespec');
  // A NULL path changes the file dirfd refers to (futimens).
  const target = addr === 0 ? fdTarget(task, dirfd | 0, false) : changeTarget(task, dirfd, addr, flags);
  return changeTimes(task, target, change, timesAddr !== 0);
}

function futimesat(task: Task, dirfd: number, addr: number, timesAddr: number): number {
  const change = readTimes(task, timesAddr, 'timeval');
  const target = addr === 0 ? fdTarget(task, dirfd | 0, false) : changeTarget(task, dirfd, addr, 0);
  return changeTimes(task, target, change, timesAddr !== 0);
}

function utimes(task: Task, addr: number, timesAddr: number): number {
  return changeTimes(task, changeTarget(task, AT_FDCWD, addr, 0), readTimes(task, timesAddr, 'timeval'), timesAddr !== 0);
}

function utime(task: Task, addr: number, timesAddr: number): number {
  return changeTimes(task, changeTarget(task, AT_FDCWD, addr, 0), readTimes(task, timesAddr, 'utimbuf'), timesAddr !== 0);
}

function truncate(task: Task, addr: number, length: number): number {
  if (length < 0) fail(Errno.EINVAL);
  const st = statAt(task, AT_FDCWD, addr, 0);
  if (isDir(st.mode)) fail(Errno.EISDIR);
  if (!isRegular(st.mode)) fail(Errno.EINVAL);
  changeTarget(task, AT_FDCWD, addr, 0).apply({ size: length });
  return 0;
}

function ftruncate(task: Task, fd: number, length: number): number {
  const file = task.fdTable.get(fd | 0);
  if (file.flags & O_PATH) fail(Errno.EBADF);
  if (length < 0 || (file.flags & O_ACCMODE) === O_RDONLY || !isRegular(file.stat().mode)) fail(Errno.EINVAL);
  if (!isChangeable(file)) return fail(Errno.EROFS);
  file.setAttributes({ size: length });
  return 0;
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
const readOnlyNote = 'works on tmpfs files; fails with EROFS on the read-only host view';
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
registerSyscall('utime', utime, { args: ['path', 'ptr'], note: readOnlyNote });
registerSyscall('truncate', truncate, { args: ['path', 'int'], note: readOnlyNote });
registerSyscall('ftruncate', ftruncate, { args: ['fd', 'int'], note: readOnlyNote });
const accessNote = 'supplementary groups and capabilities other than uid 0 are not considered';
registerSyscall('access', access, { args: ['path', 'int'], support: 'partial', note: accessNote });
registerSyscall('faccessat', faccessat, { args: ['fd', 'path', 'int'], support: 'partial', note: accessNote });
registerSyscall('faccessat2', faccessat2, { args: ['fd', 'path', 'int', 'flags'], support: 'partial', note: accessNote });
