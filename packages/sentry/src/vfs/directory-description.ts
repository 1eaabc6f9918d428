/**
 * Behaviour shared by directory descriptions: the errors Linux returns for data I/O on a directory,
 * and the index-based position that getdents64 and lseek move in a directory whose entries the
 * sentry lists itself.
 */
import { Errno, fail } from '../errno.js';
import { writeDirent } from './dirent.js';
import type { FileBase } from './file-base.js';
import { SEEK_CUR, SEEK_SET } from './flags.js';

export interface DirectoryEntry {
  readonly name: string;
  readonly ino: bigint;
  /** d_type, such as DT_DIR or DT_LNK. */
  readonly type: number;
}

// TypeScript accepts a class as a mixin base only when its constructor takes `...args: any[]`.
type FileBaseClass = abstract new (...args: any[]) => FileBase;

/**
 * Extends a file description class with directory data I/O as Linux does it: read and pread fail
 * with EISDIR, and write and pwrite with EBADF because a directory cannot be opened for writing.
 * The result is typed as `Base`, which the overrides leave unchanged, so that a subclass keeps the
 * constructor signature of `base`.
 */
export function DirectoryDescription<Base extends FileBaseClass>(base: Base): Base {
  abstract class Directory extends base {
    override read(): number {
      return fail(Errno.EISDIR);
    }

    override pread(): number {
      return fail(Errno.EISDIR);
    }

    override write(): number {
      return fail(Errno.EBADF);
    }

    override pwrite(): number {
      return fail(Errno.EBADF);
    }
  }
  return Directory;
}

/**
 * The position in a directory whose entries the sentry lists. The position is the index of the
 * next entry, and each entry's d_off is the index after it, so lseek to a d_off resumes there.
 * The entry list is taken by the first getdents64 and again whenever reading starts at index 0,
 * so a rewound directory shows entries added since.
 */
export class DirectoryCursor {
  private index = 0;
  private entries: readonly DirectoryEntry[] | undefined;

  constructor(private readonly listEntries: () => readonly DirectoryEntry[]) {}

  /** Fills `dst` with whole linux_dirent64 records, failing with EINVAL when not even one fits. */
  getdents(dst: Uint8Array): number {
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

  /** Moves the position for lseek, which accepts only SEEK_SET and SEEK_CUR on these directories. */
  seek(offset: number, whence: number): number {
    let target: number;
    if (whence === SEEK_SET) target = offset;
    else if (whence === SEEK_CUR) target = this.index + offset;
    else return fail(Errno.EINVAL);
    if (target < 0) fail(Errno.EINVAL);
    this.index = target;
    return target;
  }
}
