/** getdents64, the working directory (getcwd, chdir, fchdir) and readlink, readlinkat. */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, isDir, isSymlink, S_IFMT, S_IFREG } from '../vfs/flags.js';
import type { Vfs } from '../vfs/vfs.js';
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
 * Calls that create, remove or rename directory entries. They work on tmpfs mounts. On the
 * read-only host view they fail with EROFS after the lookups that Linux performs first (and their
 * ENOENT, ENOTDIR, ELOOP, EEXIST), as on a read-only mount.
 */

/** Fails like a call that creates `path` on a read-only mount: EEXIST when the name is taken, EROFS otherwise. */
function failCreate(task: Task, dirfd: number, path: string): never {
  const { exists } = task.kernel.vfs.lookupEntry(task.fs, dirfd, path, task);
  return fail(exists ? Errno.EEXIST : Errno.EROFS);
}

/** Resolves the entry `path` names for creating it; "/", "." and ".." always exist. */
function entryToCreate(task: Task, dirfd: number, path: string): Entry {
  const entry = task.kernel.vfs.resolveEntry(task.fs, dirfd, path, task);
  if (entry.name === '' || entry.name === '.' || entry.name === '..' || entry.relative === '') fail(Errno.EEXIST);
  return entry;
}

type Entry = ReturnType<Vfs['resolveEntry']>;

function mkdirat(task: Task, dirfd: number, addr: number, mode: number): number {
  const path = readPath(task, addr);
  const entry = entryToCreate(task, dirfd | 0, path);
  const fs = entry.mount.fs;
  if (fs.mkdir === undefined) return failCreate(task, dirfd | 0, path);
  fs.mkdir(entry.relative, mode & 0o7777 & ~task.fs.umask, task);
  return 0;
}

function mkdir(task: Task, addr: number, mode: number): number {
  return mkdirat(task, AT_FDCWD, addr, mode);
}

// Only regular files can be made with mknod so far: the sandbox has no devices, FIFOs or sockets of its own.
function mknodat(task: Task, dirfd: number, addr: number, modeBits: number): number {
  const path = readPath(task, addr);
  const entry = entryToCreate(task, dirfd | 0, path);
  const fs = entry.mount.fs;
  if (fs.create === undefined) return failCreate(task, dirfd | 0, path);
  const type = modeBits & S_IFMT;
  if (type !== 0 && type !== S_IFREG) fail(Errno.EPERM);
  fs.create(entry.relative, modeBits & 0o7777 & ~task.fs.umask, task);
  return 0;
}

function mknod(task: Task, addr: number, mode: number): number {
  return mknodat(task, AT_FDCWD, addr, mode);
}

function symlinkat(task: Task, targetAddr: number, dirfd: number, addr: number): number {
  const target = readPath(task, targetAddr);
  const path = readPath(task, addr);
  if (target.length === 0) fail(Errno.ENOENT);
  const entry = entryToCreate(task, dirfd | 0, path);
  const fs = entry.mount.fs;
  if (fs.symlink === undefined) return failCreate(task, dirfd | 0, path);
  fs.symlink(entry.relative, target, task);
  return 0;
}

function symlink(task: Task, targetAddr: number, addr: number): number {
  return symlinkat(task, targetAddr, AT_FDCWD, addr);
}

function linkat(task: Task, oldDirfd: number, oldAddr: number, newDirfd: number, newAddr: number, flagBits: number): number {
  const flags = flagBits | 0;
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) fail(Errno.EINVAL);
  const oldPath = readPath(task, oldAddr);
  const newPath = readPath(task, newAddr);
  const vfs = task.kernel.vfs;
  let source: { mount: Entry['mount']; relative: string };
  if (oldPath.length === 0 && flags & AT_EMPTY_PATH) {
    const file = task.fdTable.get(oldDirfd | 0);
    if (file.path.charCodeAt(0) !== 0x2f) fail(Errno.ENOENT);
    source = vfs.resolve(task.fs, AT_FDCWD, file.path, false, task);
  } else {
    source = vfs.resolve(task.fs, oldDirfd | 0, oldPath, (flags & AT_SYMLINK_FOLLOW) !== 0, task);
  }
  const entry = entryToCreate(task, newDirfd | 0, newPath);
  if (entry.mount !== source.mount) fail(Errno.EXDEV);
  const fs = entry.mount.fs;
  // Linux checks the mount for writing before it rejects hard links to directories (EPERM).
  if (fs.link === undefined) return failCreate(task, newDirfd | 0, newPath);
  fs.link(source.relative, entry.relative);
  return 0;
}

function link(task: Task, oldAddr: number, newAddr: number): number {
  return linkat(task, AT_FDCWD, oldAddr, AT_FDCWD, newAddr, 0);
}

function unlinkat(task: Task, dirfd: number, addr: number, flagBits: number): number {
  const flags = flagBits | 0;
  if (flags & ~AT_REMOVEDIR) fail(Errno.EINVAL);
  const path = readPath(task, addr);
  const entry = task.kernel.vfs.resolveEntry(task.fs, dirfd | 0, path, task);
  const last = entry.name;
  if (flags & AT_REMOVEDIR) {
    if (last === '..') fail(Errno.ENOTEMPTY);
    if (last === '.') fail(Errno.EINVAL);
    if (last === '') fail(Errno.EBUSY);
  } else if (last === '.' || last === '..' || last === '') {
    fail(Errno.EISDIR);
  }
  const fs = entry.mount.fs;
  if (flags & AT_REMOVEDIR) {
    if (fs.rmdir === undefined) return fail(Errno.EROFS);
    fs.rmdir(entry.relative);
  } else {
    if (fs.unlink === undefined) return fail(Errno.EROFS);
    if (entry.relative === '') fail(Errno.EISDIR);
    // unlink("file/") names a directory, so a regular file there is ENOTDIR.
    if (path.charCodeAt(path.length - 1) === 0x2f && !isDir(fs.lstat(entry.relative, task).mode)) fail(Errno.ENOTDIR);
    fs.unlink(entry.relative);
  }
  return 0;
}

function unlink(task: Task, addr: number): number {
  return unlinkat(task, AT_FDCWD, addr, 0);
}

function rmdir(task: Task, addr: number): number {
  return unlinkat(task, AT_FDCWD, addr, AT_REMOVEDIR);
}

/** renameat2 flags: RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT. */
const RENAME_NOREPLACE = 0x1;
const RENAME_FLAGS = 0x7;

function renameat2(task: Task, oldDirfd: number, oldAddr: number, newDirfd: number, newAddr: number, flagBits: number): number {
  const flags = flagBits | 0;
  if (flags & ~RENAME_FLAGS) fail(Errno.EINVAL);
  const oldPath = readPath(task, oldAddr);
  const newPath = readPath(task, newAddr);
  const vfs = task.kernel.vfs;
  const from = vfs.resolveEntry(task.fs, oldDirfd | 0, oldPath, task);
  const to = vfs.resolveEntry(task.fs, newDirfd | 0, newPath, task);
  if (['', '.', '..'].includes(from.name) || ['', '.', '..'].includes(to.name)) fail(Errno.EBUSY);
  if (from.mount !== to.mount) fail(Errno.EXDEV);
  const fs = from.mount.fs;
  if (fs.rename === undefined) return fail(Errno.EROFS);
  // NOTE: RENAME_EXCHANGE and RENAME_WHITEOUT are not supported on tmpfs yet.
  if (flags & ~RENAME_NOREPLACE) fail(Errno.EINVAL);
  fs.lstat(from.relative, task);
  fs.rename(from.relative, to.relative, (flags & RENAME_NOREPLACE) !== 0);
  return 0;
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
const readOnlyNote = 'works on tmpfs mounts; fails with EROFS on the read-only host view';
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
registerSyscall('renameat2', renameat2, { args: ['fd', 'path', 'fd', 'path', 'flags'], support: 'partial', note: 'RENAME_NOREPLACE only; ' + readOnlyNote });
registerUnimplemented('getdents', 'libcs use getdents64; the old struct linux_dirent is not encoded yet');
