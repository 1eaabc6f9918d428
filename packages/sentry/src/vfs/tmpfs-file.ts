/**
 * Open descriptions of tmpfs files and directories. A description keeps a reference to its inode,
 * so reads and writes keep working after the name is unlinked, as on Linux.
 */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { DirectoryCursor, DirectoryDescription, type DirectoryEntry } from './directory-description.js';
import type { FileStat } from './file.js';
import { FileBase } from './file-base.js';
import type { AttributeChange } from './filesystem.js';
import { O_APPEND, SEEK_CUR, SEEK_DATA, SEEK_END, SEEK_HOLE, SEEK_SET } from './flags.js';
import type { FsStat } from './statfs.js';
import { type Inode, MAX_TMPFS_FILE, nowNs } from './tmpfs.js';

abstract class TmpfsFileBase extends FileBase {
  constructor(
    readonly inode: Inode,
    flags: number,
    path: string,
  ) {
    super(flags, path);
  }

  stat(): FileStat {
    return this.inode.stat();
  }

  override statfs(): FsStat {
    return this.inode.fs.statfs();
  }

  /** fchmod, fchown, futimens and ftruncate. */
  setAttributes(change: AttributeChange): void {
    this.inode.setAttributes(change);
  }
}

export class TmpfsRegularFile extends TmpfsFileBase {
  private offset = 0;

  override read(_task: Task, dst: Uint8Array): number {
    if (!this.readable) fail(Errno.EBADF);
    const n = this.readAt(dst, this.offset);
    this.offset += n;
    return n;
  }

  override pread(_task: Task, dst: Uint8Array, offset: number): number {
    if (!this.readable) fail(Errno.EBADF);
    if (offset < 0) fail(Errno.EINVAL);
    return this.readAt(dst, offset);
  }

  private readAt(dst: Uint8Array, offset: number): number {
    const inode = this.inode;
    if (offset >= inode.size) return 0;
    const n = Math.min(dst.length, inode.size - offset);
    dst.set(inode.data.subarray(offset, offset + n));
    return n;
  }

  override write(_task: Task, src: Uint8Array): number {
    if (!this.writable) fail(Errno.EBADF);
    if (this.flags & O_APPEND) this.offset = this.inode.size;
    const n = this.writeAt(src, this.offset);
    this.offset += n;
    return n;
  }

  // pwrite on an O_APPEND description appends, as Linux does.
  override pwrite(_task: Task, src: Uint8Array, offset: number): number {
    if (!this.writable) fail(Errno.EBADF);
    if (offset < 0) fail(Errno.EINVAL);
    return this.writeAt(src, this.flags & O_APPEND ? this.inode.size : offset);
  }

  private writeAt(src: Uint8Array, offset: number): number {
    if (src.length === 0) return 0;
    const inode = this.inode;
    if (offset >= MAX_TMPFS_FILE) fail(Errno.EFBIG);
    const n = Math.min(src.length, MAX_TMPFS_FILE - offset);
    const end = offset + n;
    if (end > inode.size) inode.truncate(end);
    inode.data.set(src.subarray(0, n), offset);
    inode.mtimeNs = inode.ctimeNs = nowNs();
    return n;
  }

  override seek(offset: number, whence: number): number {
    const size = this.inode.size;
    let target: number;
    switch (whence) {
      case SEEK_SET:
        target = offset;
        break;
      case SEEK_CUR:
        target = this.offset + offset;
        break;
      case SEEK_END:
        target = size + offset;
        break;
      // The whole file is data: it has no holes but the implicit one at its end.
      case SEEK_DATA:
        if (offset < 0 || offset >= size) fail(Errno.ENXIO);
        target = offset;
        break;
      case SEEK_HOLE:
        if (offset < 0 || offset >= size) fail(Errno.ENXIO);
        target = size;
        break;
      default:
        return fail(Errno.EINVAL);
    }
    if (target < 0 || target > Number.MAX_SAFE_INTEGER) fail(Errno.EINVAL);
    this.offset = target;
    return target;
  }
}

/** A tmpfs directory. "." and ".." come first, then the entries in creation order. */
export class TmpfsDirectory extends DirectoryDescription(TmpfsFileBase) {
  private readonly cursor = new DirectoryCursor(() => this.listEntries());

  override getdents(dst: Uint8Array): number {
    return this.cursor.getdents(dst);
  }

  override seek(offset: number, whence: number): number {
    return this.cursor.seek(offset, whence);
  }

  private listEntries(): DirectoryEntry[] {
    const entries: DirectoryEntry[] = [
      { name: '.', ino: this.inode.ino, type: this.inode.direntType() },
      { name: '..', ino: this.inode.ino, type: this.inode.direntType() },
    ];
    for (const [name, child] of this.inode.children!) entries.push({ name, ino: child.ino, type: child.direntType() });
    return entries;
  }
}
