/**
 * File descriptions: what an open file descriptor refers to. A description is shared by every
 * descriptor dup()ed from it and by every process that inherited it; it carries the offset and the
 * status flags. Each kind of file (host file, directory, terminal, pipe, /proc file) implements
 * this interface.
 */
import type { Task } from '../kernel/task.js';
import type { CancelWatch } from './poll-events.js';
import type { FsStat } from './statfs.js';

/** struct stat fields the sentry reports; encoded for the application by vfs/stat.ts. */
export interface FileStat {
  dev: bigint;
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: bigint;
  size: number;
  blksize: number;
  blocks: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface FileDescription {
  /** Status flags (O_APPEND, O_NONBLOCK, access mode) as set by open and F_SETFL. */
  flags: number;

  /**
   * Reads into `dst` at the description's offset and advances it. Returns the byte count, 0 at end
   * of file, or a promise when the read must wait (pipe, terminal). Throws SysError on failure.
   */
  read(task: Task, dst: Uint8Array): number | Promise<number>;

  /** Writes `src` at the offset (or at the end with O_APPEND). Same return convention as read. */
  write(task: Task, src: Uint8Array): number | Promise<number>;

  /** Reads at an explicit offset without moving the description's offset (ESPIPE when not seekable). */
  pread(task: Task, dst: Uint8Array, offset: number): number | Promise<number>;

  pwrite(task: Task, src: Uint8Array, offset: number): number | Promise<number>;

  /** lseek: returns the new offset. */
  seek(offset: number, whence: number): number;

  stat(): FileStat;

  /** Returns the next directory entries encoded as struct linux_dirent64 into `dst`, or 0 at the end (ENOTDIR for non-directories). */
  getdents(dst: Uint8Array): number;

  /** ioctl on this file; returns the result or throws SysError (ENOTTY when unsupported). */
  ioctl(task: Task, request: number, arg: number): number | Promise<number>;

  /** The path this description was opened with, for /proc/self/fd and error messages. */
  readonly path: string;

  /** Called when the last descriptor referring to this description is closed. */
  release(): void;

  /**
   * Opens the same file again with new open(2) flags, as opening /proc/self/fd/N does: a new
   * description of the same pipe, terminal or device. Absent when the file is reopened by path.
   */
  reopen?(flags: number): FileDescription;

  /** Returns statfs(2) statistics for fstatfs; absent when the VFS looks them up by path. */
  statfs?(): FsStat;

  /**
   * Returns the poll(2) events ready now (POLLIN, POLLOUT, POLLHUP, POLLERR and the NORM bits).
   * FileBase returns ALWAYS_READY, as Linux does for files that never wait.
   */
  readiness(): number;

  /**
   * Calls `wake` once, at the next change that may make any of `events` ready, and returns a
   * function that cancels the watch. The caller checks readiness() again after the call, so a
   * wake-up without a change is allowed.
   */
  watchReadiness(events: number, wake: () => void): CancelWatch;

  /** Adds a reference: one per descriptor (in any table) and per in-flight user. */
  incRef(): void;

  /** Drops a reference; the last one calls release(). */
  decRef(): void;
}
