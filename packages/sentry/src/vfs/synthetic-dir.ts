/**
 * A directory description whose entries the sentry generates (/proc and its subdirectories). The
 * entry list is taken by the first getdents64 after opening or rewinding to 0, so it includes the
 * descriptor being read. The offset is the index of the next entry and each entry's d_off is the
 * index after it, so lseek to a d_off resumes there.
 */
import { Errno, fail } from '../errno.js';
import type { FileStat } from './file.js';
import { FileBase } from './file-base.js';
import { SEEK_CUR, SEEK_SET } from './flags.js';
import { writeDirent } from './dirent.js';

export interface SyntheticEntry {
  readonly name: string;
  readonly ino: bigint;
  /** d_type, such as DT_DIR or DT_LNK. */
  readonly type: number;
}

export class SyntheticDirectory extends FileBase {
  private index = 0;
  private entries: readonly SyntheticEntry[] | undefined;

  constructor(
    private readonly attributes: () => FileStat,
    private readonly listEntries: () => readonly SyntheticEntry[],
    flags: number,
    path: string,
  ) {
    super(flags, path);
  }

  stat(): FileStat {
    return this.attributes();
  }

  override read(): number {
    return fail(Errno.EISDIR);
  }

  override pread(): number {
    return fail(Errno.EISDIR);
  }

  override write(): number {
    return fail(Errno.EBADF);
  }

  override getdents(dst: Uint8Array): number {
    if (this.entries === undefined || this.index === 0) this.entries = this.listEntries();
    const entries = this.entries;
    let written = 0;
    while (this.index < entries.length) {
      const entry = entries[this.index];
      const length = writeDirent(dst, written, entry.ino, BigInt(this.index + 1), entry.type, entry.name);
      if (length === 0) break;
      written += length;
      this.index++;
    }
    if (written === 0 && this.index < entries.length) fail(Errno.EINVAL);
    return written;
  }

  override seek(offset: number, whence: number): number {
    let target: number;
    if (whence === SEEK_SET) target = offset;
    else if (whence === SEEK_CUR) target = this.index + offset;
    else return fail(Errno.EINVAL);
    if (target < 0) fail(Errno.EINVAL);
    this.index = target;
    return target;
  }
}
