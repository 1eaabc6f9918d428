/**
 * A read-only regular file whose contents the sentry generates (/proc/PID/maps and the like). The
 * contents are generated once, when the file is opened, so successive reads see one consistent
 * snapshot even while the process changes.
 * NOTE: Linux regenerates most /proc files as they are read. Here a program that keeps one open
 * and seeks back to 0 reads the old contents again.
 */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import type { FileStat } from './file.js';
import { FileBase } from './file-base.js';
import { SEEK_CUR, SEEK_END, SEEK_SET } from './flags.js';

export class SyntheticFile extends FileBase {
  private position = 0;

  constructor(
    private readonly attributes: () => FileStat,
    private readonly contents: Buffer,
    flags: number,
    path: string,
  ) {
    super(flags, path);
  }

  stat(): FileStat {
    return this.attributes();
  }

  override read(_task: Task, dst: Uint8Array): number {
    const count = this.copyAt(dst, this.position);
    this.position += count;
    return count;
  }

  override pread(_task: Task, dst: Uint8Array, offset: number): number {
    if (offset < 0) fail(Errno.EINVAL);
    return this.copyAt(dst, offset);
  }

  override write(): number {
    return fail(Errno.EBADF);
  }

  override pwrite(): number {
    return fail(Errno.EBADF);
  }

  override seek(offset: number, whence: number): number {
    let base: number;
    if (whence === SEEK_SET) base = 0;
    else if (whence === SEEK_CUR) base = this.position;
    else if (whence === SEEK_END) base = this.contents.length;
    else return fail(Errno.EINVAL);
    if (base + offset < 0) fail(Errno.EINVAL);
    this.position = base + offset;
    return this.position;
  }

  private copyAt(dst: Uint8Array, offset: number): number {
    if (offset >= this.contents.length) return 0;
    const count = Math.min(dst.length, this.contents.length - offset);
    dst.set(this.contents.subarray(offset, offset + count));
    return count;
  }
}
