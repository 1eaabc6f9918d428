/**
 * A mounted file system, as the VFS uses it. Paths handed to a file system are relative to its
 * mount point, canonical (no ".", "..", empty or symlink components: the VFS has resolved them),
 * and "" for the mount's root. Every method throws SysError on failure.
 */
import type { Task } from '../kernel/task.js';
import type { FileDescription, FileStat } from './file.js';
import type { FsStat } from './statfs.js';

/** Attribute changes of chmod, chown, utimensat and truncate. Absent fields, and ids of -1, stay unchanged. */
export interface AttributeChange {
  mode?: number;
  uid?: number;
  gid?: number;
  atimeNs?: bigint;
  mtimeNs?: bigint;
  size?: number;
}

export interface Filesystem {
  /** The file system's name as /proc/mounts would list it ("host", "proc"). */
  readonly name: string;

  /** Returns the attributes of `path` without following it when it is a symlink. */
  lstat(path: string, task: Task | undefined): FileStat;

  /** Returns the target of the symlink at `path` (EINVAL when it is not a symlink). */
  readlink(path: string, task: Task | undefined): string;

  /**
   * Opens `path`, whose attributes the VFS has just read as `stat`, with open(2) `flags`.
   * `sandboxPath` is the canonical absolute path the description reports.
   */
  open(path: string, sandboxPath: string, flags: number, stat: FileStat, task: Task | undefined): FileDescription;

  /** Returns statfs(2) statistics of the file system that contains `path`. */
  statfs(path: string, task: Task | undefined): FsStat;

  /**
   * Returns the description a "magic" symlink at `path` stands for (/proc/PID/fd/N), or undefined
   * for an ordinary symlink. Following a magic link leads to that description's file itself.
   */
  magicLink?(path: string, task: Task | undefined): FileDescription | undefined;

  /*
   * Changes to the tree, present on writable file systems only; the VFS fails with EROFS when one
   * is absent. Paths are canonical and relative to the mount point, as above, and name an entry
   * whose parent directory the VFS has resolved.
   */

  /** Creates an empty regular file (EEXIST when the name is taken). */
  create?(path: string, mode: number, task: Task | undefined): void;
  mkdir?(path: string, mode: number, task: Task | undefined): void;
  symlink?(path: string, target: string, task: Task | undefined): void;
  link?(oldPath: string, newPath: string): void;
  unlink?(path: string): void;
  rmdir?(path: string): void;
  rename?(oldPath: string, newPath: string, noReplace: boolean): void;
  setAttributes?(path: string, change: AttributeChange): void;

  /** Frees the file system's host resources. */
  close(): void;
}
