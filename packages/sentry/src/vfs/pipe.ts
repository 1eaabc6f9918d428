/**
 * Pipes: a byte queue of PIPE_CAPACITY bytes with a read end and a write end, each a file
 * description. A read of an empty pipe and a write to a full one wait through Task.block, so a
 * signal ends the wait (ERESTARTSYS, which SA_RESTART turns into a restart) and other tasks keep
 * running. Writes of at most PIPE_BUF bytes are atomic (see Pipe), larger ones may be split. A
 * write with no reader left fails with EPIPE, and the task loop then raises SIGPIPE.
 */
import { Errno, fail, SysError } from '../errno.js';
import type { Task } from '../kernel/task.js';
import type { FileStat } from './file.js';
import { FileBase } from './file-base.js';
import { O_NONBLOCK, O_RDONLY, O_WRONLY, S_IFIFO } from './flags.js';
import { type CancelWatch, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM } from './poll-events.js';

/** Writes up to this size are atomic (POSIX PIPE_BUF, 4096 on Linux). */
export const PIPE_BUF = 4096;

/** Size of one pipe buffer, a page as in Linux. */
const PIPE_PAGE = 4096;

/** Maximum number of buffers in a pipe before writers wait: Linux's default of 16 pages (64 KiB). */
export const PIPE_BUFFERS = 16;

/** FIONREAD: the number of bytes ready to read. */
const FIONREAD = 0x541b;

/** Device of the pipe file system: anonymous major 0, minor chosen here (Linux assigns one dynamically). */
const PIPEFS_DEV = 0xdn;

let nextIno = 1n;

/** One page of queued data: bytes [start, end) of `data` are unread. */
interface PipeBuffer {
  readonly data: Buffer;
  start: number;
  end: number;
}

/**
 * The queue shared by both ends. It follows Linux's layout of up to PIPE_BUFFERS page-sized
 * buffers, so that capacity and short or failed non-blocking writes match Linux. A write first
 * tops up the last buffer with its length modulo the page size, when that fits, and puts the rest
 * into new pages. A write of at most PIPE_BUF bytes therefore lands whole in one buffer, which is
 * what makes it atomic.
 */
export class Pipe {
  readonly ino = nextIno++;
  readonly createdNs = BigInt(Date.now()) * 1_000_000n;
  readers = 0;
  writers = 0;
  /** Bytes queued in all buffers. */
  size = 0;
  private readonly buffers: PipeBuffer[] = [];
  private readonly readWaiters = new Set<() => void>();
  private readonly writeWaiters = new Set<() => void>();

  /** Moves up to dst.length queued bytes into `dst`; returns the count. */
  take(dst: Uint8Array): number {
    let done = 0;
    while (done < dst.length && this.buffers.length > 0) {
      const head = this.buffers[0];
      const part = Math.min(dst.length - done, head.end - head.start);
      dst.set(head.data.subarray(head.start, head.start + part), done);
      done += part;
      head.start += part;
      if (head.start === head.end) this.buffers.shift();
    }
    this.size -= done;
    if (done > 0) this.wake(this.writeWaiters);
    return done;
  }

  /**
   * Queues as much of `data` as fits without waiting, as one pass of Linux's pipe_write does, and
   * returns the count. With `merge`, the first data.length % PIPE_PAGE bytes may top up the last
   * buffer.
   */
  put(data: Uint8Array, merge: boolean): number {
    let done = 0;
    const tail = data.length % PIPE_PAGE;
    const last = this.buffers[this.buffers.length - 1];
    if (merge && tail !== 0 && last !== undefined && last.end + tail <= PIPE_PAGE) {
      last.data.set(data.subarray(0, tail), last.end);
      last.end += tail;
      done = tail;
    }
    while (done < data.length && this.buffers.length < PIPE_BUFFERS) {
      const part = Math.min(PIPE_PAGE, data.length - done);
      const page = Buffer.allocUnsafe(PIPE_PAGE);
      page.set(data.subarray(done, done + part));
      this.buffers.push({ data: page, start: 0, end: part });
      done += part;
    }
    this.size += done;
    if (done > 0) this.wake(this.readWaiters);
    return done;
  }

  /** Whether a write would have to wait: every buffer is in use, as Linux's pipe_full(). */
  get full(): boolean {
    return this.buffers.length >= PIPE_BUFFERS;
  }

  /**
   * Calls `wake` once at the next close and, as chosen, the next put (`read`) or take (`write`);
   * returns a function that cancels the watch.
   */
  watch(wake: () => void, read = true, write = true): CancelWatch {
    if (read) this.readWaiters.add(wake);
    if (write) this.writeWaiters.add(wake);
    return () => {
      this.readWaiters.delete(wake);
      this.writeWaiters.delete(wake);
    };
  }

  /** Waits until the pipe may have changed for a reader or writer; rejects with ERESTARTSYS on a signal. */
  waitFor(task: Task, waiters: 'read' | 'write'): Promise<void> {
    const set = waiters === 'read' ? this.readWaiters : this.writeWaiters;
    return task.block<void>((resolve) => {
      set.add(resolve);
      return () => set.delete(resolve);
    });
  }

  /** Wakes everyone waiting on either end, after an end was closed. */
  wakeAll(): void {
    this.wake(this.readWaiters);
    this.wake(this.writeWaiters);
  }

  private wake(waiters: Set<() => void>): void {
    if (waiters.size === 0) return;
    const woken = [...waiters];
    waiters.clear();
    for (const wake of woken) wake();
  }
}

export class PipeEnd extends FileBase {
  private released = false;

  constructor(
    readonly pipe: Pipe,
    flags: number,
  ) {
    super(flags, `pipe:[${pipe.ino}]`);
    if (this.readable) pipe.readers++;
    if (this.writable) pipe.writers++;
  }

  /** Creates a pipe and returns its read end and write end; `flags` may contain O_NONBLOCK. */
  static create(flags: number): [PipeEnd, PipeEnd] {
    const pipe = new Pipe();
    return [new PipeEnd(pipe, O_RDONLY | (flags & O_NONBLOCK)), new PipeEnd(pipe, O_WRONLY | (flags & O_NONBLOCK))];
  }

  stat(): FileStat {
    return {
      dev: PIPEFS_DEV,
      ino: this.pipe.ino,
      mode: S_IFIFO | 0o600,
      nlink: 1,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      rdev: 0n,
      size: 0,
      blksize: 4096,
      blocks: 0,
      atimeNs: this.pipe.createdNs,
      mtimeNs: this.pipe.createdNs,
      ctimeNs: this.pipe.createdNs,
    };
  }

  override read(task: Task, dst: Uint8Array): number | Promise<number> {
    if (dst.length === 0) return 0;
    const pipe = this.pipe;
    if (pipe.size > 0) return pipe.take(dst);
    if (pipe.writers === 0) return 0;
    if ((this.flags & O_NONBLOCK) !== 0) return fail(Errno.EAGAIN);
    return pipe.waitFor(task, 'read').then(() => this.read(task, dst));
  }

  override write(task: Task, src: Uint8Array): number | Promise<number> {
    const pipe = this.pipe;
    if (pipe.readers === 0) return fail(Errno.EPIPE);
    if (src.length === 0) return 0;
    const done = pipe.put(src, pipe.size > 0);
    return done === src.length ? done : this.writeRest(task, src, done);
  }

  /** Writes src[done..] into a full pipe; `done` bytes went in already. */
  private writeRest(task: Task, src: Uint8Array, done: number): number | Promise<number> {
    const pipe = this.pipe;
    for (;;) {
      if (pipe.readers === 0) return done > 0 ? done : fail(Errno.EPIPE);
      if (done === src.length) return done;
      const part = pipe.put(src.subarray(done), false);
      if (part > 0) {
        done += part;
        continue;
      }

      if ((this.flags & O_NONBLOCK) !== 0) return done > 0 ? done : fail(Errno.EAGAIN);
      const written = done;
      return pipe.waitFor(task, 'write').then(
        () => this.writeRest(task, src, written),
        (error: unknown) => {
          // A signal after part of the data went in: the call returns what it wrote.
          if (written > 0 && error instanceof SysError) return written;
          throw error;
        },
      );
    }
  }

  override ioctl(task: Task, request: number, arg: number): number {
    if ((request >>> 0) !== FIONREAD) return fail(Errno.ENOTTY);
    const count = Buffer.alloc(4);
    count.writeInt32LE(this.readable ? this.pipe.size : 0);
    task.mm.copyOut(arg, count);
    return 0;
  }

  /** Ready events as Linux's pipe_poll reports them for this end's access mode. */
  override readiness(): number {
    const pipe = this.pipe;
    let events = 0;
    if (this.readable) {
      if (pipe.size > 0) events |= POLLIN | POLLRDNORM;
      if (pipe.writers === 0) events |= POLLHUP;
    }
    if (this.writable) {
      if (!pipe.full) events |= POLLOUT | POLLWRNORM;
      if (pipe.readers === 0) events |= POLLERR;
    }
    return events;
  }

  /**
   * Watches only the direction asked for, as Linux wakes readers on a write and writers on a read,
   * so an edge-triggered epoll watch for POLLIN is not woken by a read.
   */
  override watchReadiness(events: number, wake: () => void): CancelWatch {
    const read = (events & (POLLIN | POLLRDNORM)) !== 0;
    const write = (events & (POLLOUT | POLLWRNORM)) !== 0;
    if (read === write) return this.pipe.watch(wake);
    return this.pipe.watch(wake, read, write);
  }

  override release(): void {
    if (this.released) return;
    this.released = true;
    if (this.readable) this.pipe.readers--;
    if (this.writable) this.pipe.writers--;
    this.pipe.wakeAll();
  }
}
