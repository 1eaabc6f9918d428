/** getdents64, the working directory (getcwd, chdir, fchdir) and readlink, readlinkat. */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { AT_FDCWD, isDir, isSymlink } from '../vfs/flags.js';
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

registerSyscall('getdents64', getdents64, { args: ['fd', 'ptr', 'int'] });
registerSyscall('getcwd', getcwd, { args: ['ptr', 'int'] });
registerSyscall('chdir', chdir, { args: ['path'] });
registerSyscall('fchdir', fchdir, { args: ['fd'] });
registerSyscall('readlink', readlink, { args: ['path', 'buffer', 'int'] });
registerSyscall('readlinkat', readlinkat, { args: ['fd', 'path', 'buffer', 'int'] });
registerUnimplemented('getdents', 'libcs use getdents64; the old struct linux_dirent is not encoded yet');
