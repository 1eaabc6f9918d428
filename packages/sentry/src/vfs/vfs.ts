/**
 * The virtual file system: a mount table and path resolution done by the sentry. Resolution walks
 * one component at a time, follows symlinks itself (at most MAX_SYMLINKS per lookup, then ELOOP),
 * and treats ".." at the root as the root, so no path and no symlink target can leave the
 * sandbox's root. A file system only ever receives canonical paths relative to its mount point.
 *
 * Paths are latin1 strings, one character per byte, so any byte sequence Linux allows in a
 * file name survives (see readPath in user-path.ts).
 */
import { Errno, fail, SysError } from '../errno.js';
import type { Task } from '../kernel/task.js';
import type { FileDescription, FileStat } from './file.js';
import type { Filesystem } from './filesystem.js';
import {
  AT_FDCWD,
  isDir,
  isRegular,
  isSymlink,
  MAX_SYMLINKS,
  NAME_MAX,
  O_ACCMODE,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_TMPFILE,
  PATH_MAX,
} from './flags.js';
import type { FsContext } from './fs-context.js';
import { HostFilesystem } from './host-fs.js';
import { ProcFilesystem } from './proc-fs.js';
import { Tmpfs } from './tmpfs.js';
import type { FsStat } from './statfs.js';

export interface VfsOptions {
  /** Host directory exposed read-only at "/" ("/" for `runsc do`). */
  readonly hostRoot: string;
  /**
   * Canonical absolute paths where an empty tmpfs of its own is mounted, hiding what the host has
   * there; /tmp and /dev/shm when absent, none when empty.
   */
  readonly tmpfsMounts?: readonly string[];
}

export const DEFAULT_TMPFS_MOUNTS: readonly string[] = ['/tmp', '/dev/shm'];

/**
 * st_dev of the first tmpfs mount: major 0 as Linux gives file systems without a device, and minors
 * far above those the host hands out early, so that they stay distinct from the host's devices.
 */
const FIRST_TMPFS_MINOR = 0x7f000;

/** Returns why `path` cannot be a tmpfs mount point, or undefined when it can. */
export function tmpfsMountProblem(path: string): string | undefined {
  if (/^(\/[^/]+)+$/.test(path) && !path.split('/').some((name) => name === '.' || name === '..') && path !== '/proc') return undefined;
  return `cannot mount a tmpfs at "${path}": give an absolute path without "." or ".." components or trailing "/", other than / and /proc`;
}

/** Encodes a device number as the kernel's new_encode_dev does. */
function encodeDevice(major: number, minor: number): bigint {
  return BigInt((minor & 0xff) | (major << 8)) | (BigInt(minor & ~0xff) << 12n);
}

export interface Mount {
  /** Canonical sandbox path of the mount point. */
  readonly path: string;
  readonly fs: Filesystem;
}

/** The result of a lookup: the canonical sandbox path, the mount it is on and its attributes. */
export interface Resolved {
  readonly path: string;
  readonly mount: Mount;
  /** The path relative to the mount point, "" for the mount's root. */
  readonly relative: string;
  readonly stat: FileStat;
  /** The open description a final magic link (/proc/self/fd/N) led to; opening reopens it. */
  readonly file?: FileDescription;
}

/** Returns the canonical absolute path of `components`. */
function join(components: readonly string[]): string {
  return '/' + components.join('/');
}

function split(canonical: string): string[] {
  return canonical === '/' ? [] : canonical.slice(1).split('/');
}

export class Vfs {
  /** Mounts, longest mount point first, so the first match of a path is its mount. */
  private readonly mounts: Mount[];

  constructor(options: VfsOptions) {
    const tmpfsMounts = options.tmpfsMounts ?? DEFAULT_TMPFS_MOUNTS;
    for (const path of tmpfsMounts) {
      const problem = tmpfsMountProblem(path);
      if (problem !== undefined) throw new Error(problem);
    }
    const mounts: Mount[] = [{ path: '/proc', fs: new ProcFilesystem() }];
    tmpfsMounts.forEach((path, index) => mounts.push({ path, fs: new Tmpfs(encodeDevice(0, FIRST_TMPFS_MINOR + index)) }));
    mounts.sort((a, b) => b.path.length - a.path.length);
    mounts.push({ path: '/', fs: new HostFilesystem(options.hostRoot) });
    this.mounts = mounts;
  }

  /** The mounts in the order they were mounted, / first, as /proc/mounts lists them. */
  mountList(): readonly Mount[] {
    return [...this.mounts].reverse();
  }

  private mountOf(path: string): { mount: Mount; relative: string } {
    for (const mount of this.mounts) {
      if (mount.path === '/') return { mount, relative: path.slice(1) };
      if (path === mount.path) return { mount, relative: '' };
      if (path.startsWith(mount.path) && path.charCodeAt(mount.path.length) === 0x2f) {
        return { mount, relative: path.slice(mount.path.length + 1) };
      }
    }
    throw new Error(`no mount covers ${path}`);
  }

  private lstatCanonical(path: string, task: Task | undefined): FileStat {
    const { mount, relative } = this.mountOf(path);
    return mount.fs.lstat(relative, task);
  }

  /** Returns the canonical directory a relative path starts from: the cwd or dirfd's directory. */
  private startDirectory(context: FsContext, dirfd: number, task: Task | undefined): string {
    if (dirfd === AT_FDCWD) return context.cwd;
    if (task === undefined) return fail(Errno.EBADF);
    const file = task.fdTable.get(dirfd);
    if (!isDir(file.stat().mode)) fail(Errno.ENOTDIR);
    return file.path;
  }

  /**
   * Resolves `path` (absolute, or relative to dirfd) to a canonical path. A symlink in the last
   * component is followed when `follow` is set or the path ends with "/"; symlinks elsewhere always
   * are. Throws ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG, EACCES, or EBADF for a bad dirfd.
   */
  resolve(context: FsContext, dirfd: number, path: string, follow: boolean, task?: Task): Resolved {
    if (path.length === 0) fail(Errno.ENOENT);
    if (path.length >= PATH_MAX) fail(Errno.ENAMETOOLONG);

    let current = path.charCodeAt(0) === 0x2f ? [] : split(this.startDirectory(context, dirfd, task));
    let pending = path.split('/');
    let index = 0;
    let links = 0;
    let stat: FileStat | undefined;

    while (index < pending.length) {
      const name = pending[index++];
      if (name === '' || name === '.') continue;
      if (name === '..') {
        current.pop();
        stat = undefined;
        continue;
      }
      if (name.length > NAME_MAX) fail(Errno.ENAMETOOLONG);

      // Whether more components follow, and whether the path ends in "/" or "/." after this one,
      // which requires a directory and follows a symlink as Linux does.
      let more = false;
      let trailing = false;
      for (let rest = index; rest < pending.length; rest++) {
        if (pending[rest] === '' || pending[rest] === '.') trailing = true;
        else {
          more = true;
          break;
        }
      }

      const childPath = current.length === 0 ? '/' + name : join(current) + '/' + name;
      const childStat = this.lstatCanonical(childPath, task);
      if (isSymlink(childStat.mode) && (more || trailing || follow)) {
        if (++links > MAX_SYMLINKS) fail(Errno.ELOOP);
        const { mount, relative } = this.mountOf(childPath);

        const magic = mount.fs.magicLink?.(relative, task);
        if (magic !== undefined) {
          const magicStat = magic.stat();
          if (!more && !trailing) {
            // A description opened by path reports its canonical path, so getcwd after chdir
            // through the link names the directory rather than the link.
            if (magic.path.charCodeAt(0) !== 0x2f) return { path: childPath, mount, relative, stat: magicStat, file: magic };
            return { path: magic.path, ...this.mountOf(magic.path), stat: magicStat, file: magic };
          }
          // Only a directory opened by path can be walked through; its path is canonical.
          if (!isDir(magicStat.mode) || magic.path.charCodeAt(0) !== 0x2f) fail(Errno.ENOTDIR);
          current = split(magic.path);
          stat = magicStat;
          continue;
        }

        const target = mount.fs.readlink(relative, task);
        if (target.length === 0) fail(Errno.ENOENT);
        if (target.charCodeAt(0) === 0x2f) current = [];
        pending = target.split('/').concat(pending.slice(index));
        index = 0;
        stat = undefined;
        continue;
      }
      if ((more || trailing) && !isDir(childStat.mode)) fail(Errno.ENOTDIR);
      current.push(name);
      stat = childStat;
    }

    const canonical = join(current);
    stat ??= this.lstatCanonical(canonical, task);
    const { mount, relative } = this.mountOf(canonical);
    return { path: canonical, mount, relative, stat };
  }

  /**
   * Opens a file as openat(2) does and returns a new description holding one reference.
   * The host view is read-only: creating or writing a file there fails with EROFS. O_CREAT of a
   * dangling symlink fails with EEXIST rather than creating the link's target.
   */
  open(context: FsContext, dirfd: number, path: string, flags: number, mode: number, task?: Task): FileDescription {
    if ((flags & O_TMPFILE) === O_TMPFILE) {
      if ((flags & O_ACCMODE) === O_RDONLY) fail(Errno.EINVAL);
      const directory = this.resolve(context, dirfd, path, true, task);
      if (!isDir(directory.stat.mode)) fail(Errno.ENOTDIR);
      return fail(Errno.EROFS);
    }

    const create = (flags & O_CREAT) !== 0 && (flags & O_PATH) === 0;
    const follow = (flags & O_NOFOLLOW) === 0 && !(create && (flags & O_EXCL) !== 0);
    let resolved: Resolved;
    try {
      resolved = this.resolve(context, dirfd, path, follow, task);
    } catch (error) {
      if (!create || !(error instanceof SysError) || error.errno !== Errno.ENOENT) throw error;
      // When the directory is missing too, resolveEntry throws ENOENT instead.
      const entry = this.resolveEntry(context, dirfd, path, task);
      if (path.charCodeAt(path.length - 1) === 0x2f) fail(Errno.EISDIR);
      const fs = entry.mount.fs;
      if (fs.create === undefined) return fail(Errno.EROFS);
      fs.create(entry.relative, mode & ~context.umask, task);
      return fs.open(entry.relative, entry.path, flags, fs.lstat(entry.relative, task), task);
    }

    if (create && (flags & O_EXCL) !== 0) fail(Errno.EEXIST);
    if (create && isDir(resolved.stat.mode)) fail(Errno.EISDIR);
    if ((flags & O_DIRECTORY) !== 0 && !isDir(resolved.stat.mode)) {
      if (isSymlink(resolved.stat.mode) && (flags & O_PATH) === 0) fail(Errno.ELOOP);
      fail(Errno.ENOTDIR);
    }
    if (isSymlink(resolved.stat.mode) && (flags & O_PATH) === 0) fail(Errno.ELOOP);
    if (resolved.file !== undefined) return this.reopen(context, resolved.file, flags, task);
    return resolved.mount.fs.open(resolved.relative, resolved.path, flags, resolved.stat, task);
  }

  /**
   * Opens the file behind an open description again, for a magic link: the description's own
   * reopen() (pipes, terminals, devices), or its canonical path. ENXIO when it has neither, as
   * Linux returns for sockets.
   */
  private reopen(context: FsContext, file: FileDescription, flags: number, task: Task | undefined): FileDescription {
    if (file.reopen !== undefined) return file.reopen(flags);
    if (file.path.charCodeAt(0) !== 0x2f) return fail(Errno.ENXIO);
    return this.open(context, AT_FDCWD, file.path, flags & ~(O_CREAT | O_EXCL), 0, task);
  }

  /**
   * Looks up the entry a call that creates or removes a name works on (mkdir, unlink, rename, ...):
   * whether it exists, without following a final symlink. Throws the parent's resolution errors
   * (ENOENT when the directory that would hold it is missing, ENOTDIR, ELOOP).
   */
  lookupEntry(context: FsContext, dirfd: number, path: string, task?: Task): { exists: boolean } {
    try {
      this.resolve(context, dirfd, path, false, task);
      return { exists: true };
    } catch (error) {
      if (!(error instanceof SysError) || error.errno !== Errno.ENOENT || path.length === 0) throw error;
      this.resolveParent(context, dirfd, path, task);
      return { exists: false };
    }
  }

  /** Resolves the directory that would contain `path`'s last component; it must exist. */
  resolveParent(context: FsContext, dirfd: number, path: string, task: Task | undefined): Resolved {
    const trimmed = path.replace(/\/+$/, '');
    const slash = trimmed.lastIndexOf('/');
    let parent = trimmed.slice(0, slash);
    if (slash < 0) parent = '.';
    else if (slash === 0) parent = '/';
    const resolved = this.resolve(context, dirfd, parent, true, task);
    if (!isDir(resolved.stat.mode)) fail(Errno.ENOTDIR);
    return resolved;
  }

  /**
   * Resolves the entry a call that creates, removes or renames `path` works on: its parent must
   * be a directory, and the last component is not followed. `name` is that component ("", "." or
   * ".." for paths such as "/" or "a/.."; callers reject those), `relative` the entry's path on
   * its mount. An entry that is itself a mount point reports relative "" on the mounted file system.
   */
  resolveEntry(context: FsContext, dirfd: number, path: string, task: Task | undefined): { path: string; name: string; mount: Mount; relative: string } {
    if (path.length === 0) fail(Errno.ENOENT);
    if (path.length >= PATH_MAX) fail(Errno.ENAMETOOLONG);
    const parent = this.resolveParent(context, dirfd, path, task);
    const trimmed = path.replace(/\/+$/, '');
    const name = trimmed.slice(trimmed.lastIndexOf('/') + 1);
    if (name.length > NAME_MAX) fail(Errno.ENAMETOOLONG);
    let canonical = parent.path;
    if (name !== '' && name !== '.' && name !== '..') canonical = parent.path === '/' ? '/' + name : parent.path + '/' + name;
    return { path: canonical, name, ...this.mountOf(canonical) };
  }

  /** stat(2)/lstat(2) of a path. */
  stat(context: FsContext, dirfd: number, path: string, follow: boolean, task?: Task): FileStat {
    return this.resolve(context, dirfd, path, follow, task).stat;
  }

  /** statfs(2) of the file system that contains the file at path. */
  statfs(context: FsContext, dirfd: number, path: string, task?: Task): FsStat {
    const resolved = this.resolve(context, dirfd, path, true, task);
    if (resolved.file?.statfs !== undefined) return resolved.file.statfs();
    return resolved.mount.fs.statfs(resolved.relative, task);
  }

  /** fstatfs(2): the description's own statistics, or those of the file system its path is on. */
  fstatfs(context: FsContext, file: FileDescription, task?: Task): FsStat {
    if (file.statfs !== undefined) return file.statfs();
    if (file.path.charCodeAt(0) !== 0x2f) return fail(Errno.ENOSYS);
    return this.statfs(context, AT_FDCWD, file.path, task);
  }

  /** readlink(2): the target of the symlink at path; EINVAL when it is not a symlink. */
  readlink(context: FsContext, dirfd: number, path: string, task?: Task): string {
    const resolved = this.resolve(context, dirfd, path, false, task);
    if (!isSymlink(resolved.stat.mode)) fail(Errno.EINVAL);
    return resolved.mount.fs.readlink(resolved.relative, task);
  }

  /** Resolves a directory for chdir(2) and returns its canonical path. */
  chdir(context: FsContext, path: string, task?: Task): string {
    const resolved = this.resolve(context, AT_FDCWD, path, true, task);
    if (!isDir(resolved.stat.mode)) fail(Errno.ENOTDIR);
    context.cwd = resolved.path;
    return resolved.path;
  }

  /**
   * Opens the program to execute, as execve(2) checks it: it must be a regular file with an
   * execute bit (EACCES otherwise). Returns a description holding one reference and the canonical
   * path, which becomes the task's exePath.
   */
  openExecutable(context: FsContext, path: string, task?: Task): { file: FileDescription; path: string } {
    const resolved = this.resolve(context, AT_FDCWD, path, true, task);
    if (!isRegular(resolved.stat.mode)) fail(Errno.EACCES);
    if ((resolved.stat.mode & 0o111) === 0) fail(Errno.EACCES);
    const file = resolved.mount.fs.open(resolved.relative, resolved.path, O_RDONLY, resolved.stat, task);
    return { file, path: resolved.path };
  }

  /** Frees every mount's host resources (the host root's fd). */
  close(): void {
    for (const mount of this.mounts) mount.fs.close();
  }
}
