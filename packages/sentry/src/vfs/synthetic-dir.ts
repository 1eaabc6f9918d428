/**
 * A directory description whose entries the sentry generates (/proc and its subdirectories). The
 * entry list is taken by the first getdents64 after opening or rewinding to 0, so it includes the
 * descriptor being read.
 */
import type { FileStat } from './file.js';
import { FileBase } from './file-base.js';
import { DirectoryCursor, DirectoryDescription, type DirectoryEntry } from './directory-description.js';

/** An entry that the sentry generates for a synthetic directory. */
export type SyntheticEntry = DirectoryEntry;

export class SyntheticDirectory extends DirectoryDescription(FileBase) {
  private readonly cursor: DirectoryCursor;

  constructor(
    private readonly attributes: () => FileStat,
    listEntries: () => readonly SyntheticEntry[],
    flags: number,
    path: string,
  ) {
    super(flags, path);
    this.cursor = new DirectoryCursor(listEntries);
  }

  stat(): FileStat {
    return this.attributes();
  }

  override getdents(dst: Uint8Array): number {
    return this.cursor.getdents(dst);
  }

  override seek(offset: number, whence: number): number {
    return this.cursor.seek(offset, whence);
  }
}
