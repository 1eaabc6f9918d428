/**
 * The defaults every file description starts from: the errno Linux returns for an operation a kind
 * of file does not support, and the reference count that calls release() once.
 */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import type { FileDescription, FileStat } from './file.js';
import { ALWAYS_READY, type CancelWatch } from './poll-events.js';
import { releaseDescriptionLocks } from './locks.js';
import type { FsStat } from './statfs.js';
import { O_ACCMODE, O_CLOEXEC, O_CREAT, O_EXCL, O_NOCTTY, O_RDONLY, O_TRUNC, O_WRONLY } from './flags.js';

/** Open flags that only affect the open call itself; Linux does not keep them in the description. */
const OPEN_TIME_FLAGS = O_CLOEXEC | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC;

export abstract class FileBase implements FileDescription {
  private refs = 1;
  private lastCloseHooks: Set<() => void> | undefined;
  flags: number;

  constructor(
    flags: number,
    readonly path: string,
  ) {
    this.flags = flags & ~OPEN_TIME_FLAGS;
  }

  abstract stat(): FileStat;

  /** Whether the access mode allows reading; write-only descriptions fail reads with EBADF. */
  get readable(): boolean {
    return (this.flags & O_ACCMODE) !== O_WRONLY;
  }

  get writable(): boolean {
    return (this.flags & O_ACCMODE) !== O_RDONLY;
  }

  read(_task: Task, _dst: Uint8Array): number | Promise<number> {
    return fail(Errno.EINVAL);
  }

  write(_task: Task, _src: Uint8Array): number | Promise<number> {
    return fail(Errno.EINVAL);
  }

  pread(_task: Task, _dst: Uint8Array, _offset: number): number | Promise<number> {
    return fail(Errno.ESPIPE);
  }

  pwrite(_task: Task, _src: Uint8Array, _offset: number): number | Promise<number> {
    return fail(Errno.ESPIPE);
  }

  seek(_offset: number, _whence: number): number {
    return fail(Errno.ESPIPE);
  }

  getdents(_dst: Uint8Array): number {
    return fail(Errno.ENOTDIR);
  }

  ioctl(_task: Task, _request: number, _arg: number): number | Promise<number> {
    return fail(Errno.ENOTTY);
  }

  readiness(): number {
    return ALWAYS_READY;
  }

  /** Files that are always ready never change readiness, so the watch never fires. */
  watchReadiness(_events: number, _wake: () => void): CancelWatch {
    return () => {};
  }

  reopen?(flags: number): FileDescription;

  statfs?(): FsStat;

  release(): void {}

  incRef(): void {
    this.refs++;
  }

  /**
   * Runs `hook` when the last reference goes, before release(); returns a function that removes
   * it. Epoll drops its interest entries for the description this way.
   */
  onLastClose(hook: () => void): () => void {
    this.lastCloseHooks ??= new Set();
    this.lastCloseHooks.add(hook);
    return () => this.lastCloseHooks?.delete(hook);
  }

  decRef(): void {
    this.refs--;
    if (this.refs !== 0) return;
    releaseDescriptionLocks(this);
    const hooks = this.lastCloseHooks;
    this.lastCloseHooks = undefined;
    hooks?.forEach((hook) => hook());
    this.release();
  }
}
