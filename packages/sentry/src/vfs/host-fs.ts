/**
 * The host file system: a host directory exposed read-only. Every host access goes through an
 * O_PATH fd of that directory with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so whatever
 * the application does, nothing outside the directory can be reached; the VFS follows symlinks.
 */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { native } from '../native.js';
import type { FileDescription, FileStat } from './file.js';
import type { Filesystem } from './filesystem.js';
import {
  O_ACCMODE,
  O_DIRECTORY,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_TRUNC,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
} from './flags.js';
import { HostDirectory, HostRegularFile, PathFile } from './host-file.js';
import { newStatBuffer, statFromHost } from './host-stat.js';
import { isControllingTerminalDevice, openControllingTerminal } from './host-stream.js';
import { MemDevice, memDeviceKind } from './mem-device.js';
import { deviceMajor, deviceMinor } from './stat.js';
import { type FsStat, HOST_STATFS_FIELDS, ST_RDONLY, statfsFromHost } from './statfs.js';

export class HostFilesystem implements Filesystem {
  readonly name = 'host';
  private rootFd: number;
  private readonly scratch = newStatBuffer();

  /** Opens `hostRoot`; throws an Error with a one-line message when it is not a usable directory. */
  constructor(readonly hostRoot: string) {
    const fd = native.hostOpenRoot(hostRoot);
    if (fd < 0) {
      let reason = `errno ${-fd}`;
      if (fd === -Errno.ENOENT) reason = 'no such directory';
      else if (fd === -Errno.ENOTDIR) reason = 'not a directory';
      else if (fd === -Errno.EACCES) reason = 'permission denied';
      throw new Error(`cannot use ${hostRoot} as the sandbox root: ${reason}`);
    }
    this.rootFd = fd;
  }

  private hostPath(path: string): string {
    return path === '' ? '.' : path;
  }

  lstat(path: string): FileStat {
    const result = native.hostLstatBeneath(this.rootFd, this.hostPath(path), this.scratch);
    if (result < 0) fail(-result);
    return statFromHost(this.scratch);
  }

  /** Returns the host file system's statistics, marked read-only (ST_RDONLY) as this view is. */
  statfs(path: string): FsStat {
    const raw = new BigInt64Array(HOST_STATFS_FIELDS);
    const result = native.hostStatfsBeneath(this.rootFd, this.hostPath(path), raw);
    if (result < 0) fail(-result);
    const st = statfsFromHost(raw);
    st.flags |= ST_RDONLY;
    return st;
  }

  readlink(path: string): string {
    const target = native.hostReadlinkBeneath(this.rootFd, this.hostPath(path));
    if (typeof target === 'number') return fail(target === -Errno.ENOENT ? Errno.ENOENT : Errno.EINVAL);
    return target;
  }

  open(path: string, sandboxPath: string, flags: number, stat: FileStat, task: Task | undefined): FileDescription {
    if (flags & O_PATH) return new PathFile(() => this.lstat(path), flags, sandboxPath);

    const accessMode = flags & O_ACCMODE;
    const type = stat.mode & S_IFMT;
    switch (type) {
      case S_IFREG: {
        if (accessMode !== O_RDONLY || flags & O_TRUNC) fail(Errno.EROFS);
        const fd = this.openHost(path, O_RDONLY | (flags & O_NONBLOCK));
        return new HostRegularFile(fd, flags, sandboxPath);
      }
      case S_IFDIR: {
        if (accessMode !== O_RDONLY) fail(Errno.EISDIR);
        const fd = this.openHost(path, O_RDONLY | O_DIRECTORY);
        return new HostDirectory(fd, flags, sandboxPath);
      }
      case S_IFCHR: {
        const major = deviceMajor(stat.rdev);
        const minor = deviceMinor(stat.rdev);
        if (isControllingTerminalDevice(major, minor)) return openControllingTerminal(task, flags);
        const kind = memDeviceKind(major, minor);
        // NOTE: other host devices (disks, the host's own terminals by name) are not opened:
        // passing them through would hand the application the host's hardware.
        if (kind === undefined) fail(Errno.EPERM);
        return new MemDevice(kind, stat, flags, sandboxPath);
      }
      case S_IFLNK:
        return fail(Errno.ELOOP);
      case S_IFSOCK:
        return fail(Errno.ENXIO);
      case S_IFBLK:
      case S_IFIFO:
      default:
        return fail(Errno.EPERM);
    }
  }

  private openHost(path: string, flags: number): number {
    const fd = native.hostOpenBeneath(this.rootFd, this.hostPath(path), flags);
    if (fd < 0) fail(-fd);
    return fd;
  }

  close(): void {
    if (this.rootFd < 0) return;
    native.hostClose(this.rootFd);
    this.rootFd = -1;
  }
}
