/**
 * A descriptor table: file descriptor numbers mapped to file descriptions, with the close-on-exec
 * flag per descriptor. Each descriptor holds one reference to its description. Threads share a
 * table; fork will copy it with fork().
 */
import { Errno, fail } from '../errno.js';
import type { FileDescription } from './file.js';
import { HostStream } from './host-stream.js';
import { releasePosixLocks } from './locks.js';

/** RLIMIT_NOFILE's default soft limit on Linux. */
export const DEFAULT_MAX_FDS = 1024;

export class FdTable {
  private readonly files: Array<FileDescription | undefined> = [];
  private readonly cloexec: boolean[] = [];

  /** One more than the highest descriptor number allowed (RLIMIT_NOFILE); EMFILE beyond. */
  limit = DEFAULT_MAX_FDS;

  /**
   * Returns a table whose descriptors 0, 1, 2, ... wrap the host descriptors `hostFds` (runsc's
   * own stdin, stdout and stderr by default). A host descriptor that is not open leaves its
   * number unused, as for a program started with that stdio descriptor closed.
   */
  static withStdio(hostFds: readonly number[] = [0, 1, 2]): FdTable {
    const table = new FdTable();
    hostFds.forEach((hostFd, fd) => {
      const stream = HostStream.wrap(hostFd);
      if (stream !== undefined) table.installAt(fd, stream, false);
    });
    return table;
  }

  /** Returns the description of `fd`; throws EBADF when the descriptor is not open. */
  get(fd: number): FileDescription {
    const file = fd >= 0 ? this.files[fd] : undefined;
    if (file === undefined) return fail(Errno.EBADF);
    return file;
  }

  /**
   * Installs `file` at the lowest free descriptor at or above `minFd` and returns it. The table
   * takes over the caller's reference; on EMFILE the caller still owns it.
   */
  install(file: FileDescription, cloexec = false, minFd = 0): number {
    let fd = minFd;
    while (fd < this.files.length && this.files[fd] !== undefined) fd++;
    if (fd >= this.limit) fail(Errno.EMFILE);
    this.installAt(fd, file, cloexec);
    return fd;
  }

  /** Puts `file` at `fd`, closing what was there (dup2 semantics); takes over the caller's reference. */
  installAt(fd: number, file: FileDescription, cloexec: boolean): void {
    if (fd < 0 || fd >= this.limit) fail(Errno.EBADF);
    const previous = this.files[fd];
    this.files[fd] = file;
    this.cloexec[fd] = cloexec;
    if (previous !== undefined) {
      releasePosixLocks(this, previous);
      previous.decRef();
    }
  }

  /** Closes `fd`; throws EBADF when it is not open. */
  close(fd: number): void {
    const file = this.get(fd);
    this.files[fd] = undefined;
    this.cloexec[fd] = false;
    releasePosixLocks(this, file);
    file.decRef();
  }

  /** dup/F_DUPFD: a new descriptor at or above `minFd` for the same description. */
  dup(fd: number, minFd = 0, cloexec = false): number {
    const file = this.get(fd);
    if (minFd >= this.limit) fail(Errno.EINVAL);
    file.incRef();
    try {
      return this.install(file, cloexec, minFd);
    } catch (error) {
      file.decRef();
      throw error;
    }
  }

  /** dup2/dup3: makes `newFd` refer to `oldFd`'s description, closing what `newFd` was. */
  dup2(oldFd: number, newFd: number, cloexec = false): number {
    const file = this.get(oldFd);
    if (newFd < 0 || newFd >= this.limit) fail(Errno.EBADF);
    if (oldFd === newFd) return newFd;
    file.incRef();
    this.installAt(newFd, file, cloexec);
    return newFd;
  }

  getCloexec(fd: number): boolean {
    this.get(fd);
    return this.cloexec[fd] === true;
  }

  setCloexec(fd: number, cloexec: boolean): void {
    this.get(fd);
    this.cloexec[fd] = cloexec;
  }

  /** Returns the open descriptor numbers in increasing order. */
  openFds(): number[] {
    const fds: number[] = [];
    this.files.forEach((file, fd) => {
      if (file !== undefined) fds.push(fd);
    });
    return fds;
  }

  /** Returns a copy for fork: the same descriptions, one more reference each. */
  fork(): FdTable {
    const copy = new FdTable();
    copy.limit = this.limit;
    this.files.forEach((file, fd) => {
      if (file === undefined) return;
      file.incRef();
      copy.files[fd] = file;
      copy.cloexec[fd] = this.cloexec[fd];
    });
    return copy;
  }

  /** Closes the descriptors marked close-on-exec, as execve does. */
  closeOnExec(): void {
    for (const fd of this.openFds()) {
      if (this.cloexec[fd]) this.close(fd);
    }
  }

  /** Closes every descriptor; the table stays usable and empty. */
  closeAll(): void {
    for (const fd of this.openFds()) this.close(fd);
  }
}
