/**
 * File descriptions of regular files and directories of the host file system. The host fd is
 * opened read-only. A regular file's description keeps its own offset, but a directory's offset
 * stays in the host fd because only the host file system can interpret its d_off cookies.
 */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { native } from '../native.js';
import { DirectoryDescription } from './directory-description.js';
import type { FileStat } from './file.js';
import { FileBase } from './file-base.js';
import { SEEK_CUR, SEEK_DATA, SEEK_END, SEEK_HOLE, SEEK_SET } from './flags.js';
import { newStatBuffer, statFromHost } from './host-stat.js';
import { type FsStat, HOST_STATFS_FIELDS, ST_RDONLY, statfsFromHost } from './statfs.js';

/** Largest offset lseek accepts on a regular file (MAX_LFS_FILESIZE on 64-bit Linux). */
const MAX_FILE_OFFSET = Number.MAX_SAFE_INTEGER;

function checked(result: number): number {
  if (result < 0) fail(-result);
  return result;
}

abstract class HostFileBase extends FileBase {
  protected closed = false;

  constructor(
    protected readonly fd: number,
    flags: number,
    path: string,
  ) {
    super(flags, path);
  }

  stat(): FileStat {
    const raw = newStatBuffer();
    checked(native.hostFstat(this.fd, raw));
    return statFromHost(raw);
  }

  override statfs(): FsStat {
    const raw = new BigInt64Array(HOST_STATFS_FIELDS);
    checked(native.hostFstatfs(this.fd, raw));
    const st = statfsFromHost(raw);
    st.flags |= ST_RDONLY;
    return st;
  }

  override release(): void {
    if (this.closed) return;
    this.closed = true;
    native.hostClose(this.fd);
  }
}

export class HostRegularFile extends HostFileBase {
  private offset = 0;

  override read(_task: Task, dst: Uint8Array): number {
    const n = checked(native.hostPread(this.fd, dst, this.offset));
    this.offset += n;
    return n;
  }

  override pread(_task: Task, dst: Uint8Array, offset: number): number {
    if (offset < 0) fail(Errno.EINVAL);
    return checked(native.hostPread(this.fd, dst, offset));
  }

  // The host view is read-only and the fd is opened O_RDONLY, so a write reaches here only
  // through a description the application opened for reading: Linux returns EBADF.
  override write(): number {
    return fail(Errno.EBADF);
  }

  override pwrite(): number {
    return fail(Errno.EBADF);
  }

  override seek(offset: number, whence: number): number {
    let base: number;
    switch (whence) {
      case SEEK_SET:
        base = 0;
        break;
      case SEEK_CUR:
        base = this.offset;
        break;
      case SEEK_END:
        base = this.stat().size;
        break;
      case SEEK_DATA:
      case SEEK_HOLE:
        // Holes are a property of the host file, so the host computes the result. Its fd offset is unused.
        this.offset = checked(native.hostLseek(this.fd, offset, whence));
        return this.offset;
      default:
        return fail(Errno.EINVAL);
    }
    const target = base + offset;
    if (target < 0 || target > MAX_FILE_OFFSET) fail(Errno.EINVAL);
    this.offset = target;
    return target;
  }
}

export class HostDirectory extends DirectoryDescription(HostFileBase) {
  /**
   * Returns host entries with their real d_ino, d_type and d_off. The host fills only whole entries
   * and fails with EINVAL when not even one fits, which is the behaviour the application expects.
   */
  override getdents(dst: Uint8Array): number {
    return checked(native.hostGetdents64(this.fd, dst));
  }

  override seek(offset: number, whence: number): number {
    if (whence !== SEEK_SET && whence !== SEEK_CUR && whence !== SEEK_END) fail(Errno.EINVAL);
    return checked(native.hostLseek(this.fd, offset, whence));
  }
}

/** An O_PATH description: usable as a dirfd and with fstat, nothing else (EBADF). */
export class PathFile extends FileBase {
  constructor(
    private readonly statOf: () => FileStat,
    flags: number,
    path: string,
  ) {
    super(flags, path);
  }

  stat(): FileStat {
    return this.statOf();
  }

  override read(): number {
    return fail(Errno.EBADF);
  }

  override write(): number {
    return fail(Errno.EBADF);
  }

  override pread(): number {
    return fail(Errno.EBADF);
  }

  override pwrite(): number {
    return fail(Errno.EBADF);
  }

  override seek(): number {
    return fail(Errno.EBADF);
  }

  override getdents(): number {
    return fail(Errno.EBADF);
  }

  override ioctl(): number {
    return fail(Errno.EBADF);
  }
}
