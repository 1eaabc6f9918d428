/** getdents64, the working directory (getcwd, chdir, fchdir) and readlink, readlinkat. */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, isDir, isSymlink } from '../vfs/flags.js';
import { pathBytes, readPath } from '../vfs/user-path.js';
import { registerSyscall, registerUnimplemented } from './table.js';

/**
 * Largest buffer one getdents64 fills; a larger request gets fewer entries, which the caller
 * handles by calling again.
 */
const MAX_DIRENT_BUFFER = 1024 * 1024;

function getdents64(task: Task, fd: number, addr: number, count: number): number {
  const file = task.fdTable.get(fd | 0);
  // count is an unsigned int.
  const buffer = Buffer.allocUnsafe(Math.min(count >>> 0, MAX_DIRENT_BUFFER));
  const n = file.getdents(buffer);
  task.mm.copyOut(addr, buffer.subarray(0, n));
  return n;
}

function getcwd(task: Task, addr: number, size: number): number {
  const bytes = pathBytes(task.fs.cwd + '\0');
  if (size < bytes.length) fail(Errno.ERANGE);
  task.mm.copyOut(addr, bytes);
  return bytes.length;
}

function chdir(task: Task, addr: number): number {
  task.kernel.vfs.chdir(task.fs, readPath(task, addr), task);
  return 0;
}

function fchdir(task: Task, fd: number): number {
  const file = task.fdTable.get(fd | 0);
  if (!isDir(file.stat().mode)) fail(Errno.ENOTDIR);
  task.fs.cwd = file.path;
  return 0;
}

function readlinkat(task: Task, fd: number, addr: number, bufferAddr: number, sizeBits: number): number {
  // dirfd and bufsiz are C ints: only the low 32 bits of the registers count.
  const dirfd = fd | 0;
  const size = sizeBits | 0;
  if (size <= 0) fail(Errno.EINVAL);
  const path = readPath(task, addr);

  let target: string;
  if (path.length === 0) {
    // An empty path reads the symlink that dirfd itself refers to (opened with O_PATH | O_NOFOLLOW).
    if (dirfd === AT_FDCWD) fail(Errno.ENOENT);
    const file = task.fdTable.get(dirfd);
    if (!isSymlink(file.stat().mode)) fail(Errno.ENOENT);
    target = task.kernel.vfs.readlink(task.fs, AT_FDCWD, file.path, task);
  } else {
    target = task.kernel.vfs.readlink(task.fs, dirfd, path, task);
  }

  // readlink(2) truncates silently and writes no NUL.
  const bytes = pathBytes(target).subarray(0, size);
  task.mm.copyOut(bufferAddr, bytes);
  return bytes.length;
}

function readlink(task: Task, addr: number, bufferAddr: number, size: number): number {
  return readlinkat(task, AT_FDCWD, addr, bufferAddr, size);
}

/**
 * Calls that create, remove or rename directory entries. The host view is read-only, so after the
 * lookups that Linux performs first (and their ENOENT, ENOTDIR, ELOOP, EEXIST), they fail with
 * EROFS, as they would on a read-only mount.
 */

/** Returns the last component of `path`, ignoring trailing slashes ("" for "/"). */
function lastComponent(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** Fails like a call that creates `path`: EEXIST when the name is taken, EROFS otherwise. */
function failCreate(task: Task, dirfd: number, path: string): never {
  const { exists } = task.kernel.vfs.lookupEntry(task.fs, dirfd, path, task);
  return fail(exists ? Errno.EEXIST : Errno.EROFS);
}

function mkdirat(task: Task, dirfd: number, addr: number): number {
  return failCreate(task, dirfd | 0, readPath(task, addr));
}

function mkdir(task: Task, addr: number): number {
  return mkdirat(task, AT_FDCWD, addr);
}

function mknodat(task: Task, dirfd: number, addr: number): number {
  return failCreate(task, dirfd | 0, readPath(task, addr));
}

function mknod(task: Task, addr: number): number {
  return mknodat(task, AT_FDCWD, addr);
}

function symlinkat(task: Task, targetAddr: number, dirfd: number, addr: number): number {
  const target = readPath(task, targetAddr);
  const path = readPath(task, addr);
  if (target.length === 0) fail(Errno.ENOENT);
  return failCreate(task, dirfd | 0, path);
}

function symlink(task: Task, targetAddr: number, addr: number): number {
  return symlinkat(task, targetAddr, AT_FDCWD, addr);
}

function linkat(task: Task, oldDirfd: number, oldAddr: number, newDirfd: number, newAddr: number, flagBits: number): number {
  const flags = flagBits | 0;
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) fail(Errno.EINVAL);
  const oldPath = readPath(task, oldAddr);
  const newPath = readPath(task, newAddr);
  if (oldPath.length === 0 && flags & AT_EMPTY_PATH) task.fdTable.get(oldDirfd | 0);
  else task.kernel.vfs.stat(task.fs, oldDirfd | 0, oldPath, (flags & AT_SYMLINK_FOLLOW) !== 0, task);
  // Linux checks the mount for writing before it rejects hard links to directories (EPERM).
  return failCreate(task, newDirfd | 0, newPath);
}

function link(task: Task, oldAddr: number, newAddr: number): number {
  return linkat(task, AT_FDCWD, oldAddr, AT_FDCWD, newAddr, 0);
}

function unlinkat(task: Task, dirfd: number, addr: number, flagBits: number): number {
  const flags = flagBits | 0;
  if (flags & ~AT_REMOVEDIR) fail(Errno.EINVAL);
  const path = readPath(task, addr);
  task.kernel.vfs.resolveParent(task.fs, dirfd | 0, path, task);
  const last = lastComponent(path);
  if (flags & AT_REMOVEDIR) {
    if (last === '..') fail(Errno.ENOTEMPTY);
    if (last === '.') fail(Errno.EINVAL);
    if (last === '') fail(Errno.EBUSY);
  } else if (last === '.' || last === '..' || last === '') {
    fail(Errno.EISDIR);
  }
  return fail(Errno.EROFS);
}

function unlink(task: Task, addr: number): number {
  return unlinkat(task, AT_FDCWD, addr, 0);
}

function rmdir(task: Task, addr: number): number {
  return unlinkat(task, AT_FDCWD, addr, AT_REMOVEDIR);
}

/** renameat2 flags: RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT. */
const RENAME_FLAGS = 0x7;

function renameat2(task: Task, oldDirfd: number, oldAddr: number, newDirfd: number, newAddr: number, flagBits: number): number {
  if ((flagBits | 0) & ~RENAME_FLAGS) fail(Errno.EINVAL);
  const oldPath = readPath(task, oldAddr);
  const newPath = readPath(task, newAddr);
  task.kernel.vfs.resolveParent(task.fs, oldDirfd | 0, oldPath, task);
  task.kernel.vfs.resolveParent(task.fs, newDirfd | 0, newPath, task);
  const oldLast = lastComponent(oldPath);
  const newLast = lastComponent(newPath);
  if (['', '.', '..'].includes(oldLast) || ['', '.', '..'].includes(newLast)) fail(Errno.EBUSY);
  return fail(Errno.EROFS);
}

function renameat(task: Task, oldDirfd: number, oldAddr: number, newDirfd: number, newAddr: number): number {
  return renameat2(task, oldDirfd, oldAddr, newDirfd, newAddr, 0);
}

function rename(task: Task, oldAddr: number, newAddr: number): number {
  return renameat2(task, AT_FDCWD, oldAddr, AT_FDCWD, newAddr, 0);
}

registerSyscall('getdents64', getdents64, { args: ['fd', 'ptr', 'int'] });
registerSyscall('getcwd', getcwd, { args: ['ptr', 'int'] });
registerSyscall('chdir', chdir, { args: ['path'] });
registerSyscall('fchdir', fchdir, { args: ['fd'] });
registerSyscall('readlink', readlink, { args: ['path', 'buffer', 'int'] });
registerSyscall('readlinkat', readlinkat, { args: ['fd', 'path', 'buffer', 'int'] });
const readOnlyNote = 'the host view is read-only: fails with EROFS after the lookups';
registerSyscall('mkdir', mkdir, { args: ['path', 'int'], note: readOnlyNote });
registerSyscall('mkdirat', mkdirat, { args: ['fd', 'path', 'int'], note: readOnlyNote });
registerSyscall('mknod', mknod, { args: ['path', 'int', 'hex'], note: readOnlyNote });
registerSyscall('mknodat', mknodat, { args: ['fd', 'path', 'int', 'hex'], note: readOnlyNote });
registerSyscall('symlink', symlink, { args: ['path', 'path'], note: readOnlyNote });
registerSyscall('symlinkat', symlinkat, { args: ['path', 'fd', 'path'], note: readOnlyNote });
registerSyscall('link', link, { args: ['path', 'path'], note: readOnlyNote });
registerSyscall('linkat', linkat, { args: ['fd', 'path', 'fd', 'path', 'flags'], note: readOnlyNote });
registerSyscall('unlink', unlink, { args: ['path'], note: readOnlyNote });
registerSyscall('unlinkat', unlinkat, { args: ['fd', 'path', 'flags'], note: readOnlyNote });
registerSyscall('rmdir', rmdir, { args: ['path'], note: readOnlyNote });
registerSyscall('rename', rename, { args: ['path', 'path'], note: readOnlyNote });
registerSyscall('renameat', renameat, { args: ['fd', 'path', 'fd', 'path'], note: readOnlyNote });
registerSyscall('renameat2', renameat2, { args: ['fd', 'path', 'fd', 'path', 'flags'], note: readOnlyNote });
registerUnimplemented('getdents', 'libcs use getdents64; the old struct linux_dirent is not encoded yet');
