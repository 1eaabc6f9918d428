/**
 * eventfd: a 64-bit counter behind a file description. A write adds to the counter and a read
 * takes it (or, with EFD_SEMAPHORE, takes one). A read of a zero counter and a write that would
 * pass EVENTFD_MAX wait through Task.block, so other tasks keep running and a signal ends the wait.
 * As in Linux, a write wakes only readers and a read wakes only writers, which is what an
 * edge-triggered epoll watch of one direction observes.
 */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { AnonymousInode } from './anon-inode.js';
import type { FileStat } from './file.js';
import { FileBase } from './file-base.js';
import { O_NONBLOCK, O_RDWR } from './flags.js';
import { type CancelWatch, POLLERR, POLLIN, POLLOUT, POLLPRI, POLLRDBAND, POLLRDNORM, POLLWRBAND, POLLWRNORM } from './poll-events.js';

/** Largest counter value; a write that would go past it waits (or fails with EAGAIN). */
export const EVENTFD_MAX = 0xfffffffffffffffen;

/** eventfd2 flag: each read returns 1 and decrements the counter by one. */
export const EFD_SEMAPHORE = 1;

const COUNTER_SIZE = 8;

/** Events whose watchers wait for the counter to become non-zero, or to drop below the maximum. */
const READ_EVENTS = POLLIN | POLLRDNORM | POLLRDBAND | POLLPRI;
const WRITE_EVENTS = POLLOUT | POLLWRNORM | POLLWRBAND;

export class EventFd extends FileBase {
  private readonly inode = new AnonymousInode();
  private counter: bigint;
  private readonly readWaiters = new Set<() => void>();
  private readonly writeWaiters = new Set<() => void>();

  constructor(
    initial: number,
    flags: number,
    private readonly semaphore: boolean,
  ) {
    super(O_RDWR | (flags & O_NONBLOCK), 'anon_inode:[eventfd]');
    this.counter = BigInt(initial >>> 0);
  }

  stat(): FileStat {
    return this.inode.stat();
  }

  override read(task: Task, dst: Uint8Array): number | Promise<number> {
    if (dst.length < COUNTER_SIZE) return fail(Errno.EINVAL);
    if (this.counter === 0n) {
      if ((this.flags & O_NONBLOCK) !== 0) return fail(Errno.EAGAIN);
      return this.waitFor(task, this.readWaiters).then(() => this.read(task, dst));
    }

    const value = this.semaphore ? 1n : this.counter;
    this.counter -= value;
    Buffer.from(dst.buffer, dst.byteOffset, COUNTER_SIZE).writeBigUInt64LE(value);
    wakeAll(this.writeWaiters);
    return COUNTER_SIZE;
  }

  override write(task: Task, src: Uint8Array): number | Promise<number> {
    if (src.length < COUNTER_SIZE) return fail(Errno.EINVAL);
    const value = Buffer.from(src.buffer, src.byteOffset, COUNTER_SIZE).readBigUInt64LE(0);
    if (value === 0xffffffffffffffffn) return fail(Errno.EINVAL);
    if (EVENTFD_MAX - this.counter < value) {
      if ((this.flags & O_NONBLOCK) !== 0) return fail(Errno.EAGAIN);
      return this.waitFor(task, this.writeWaiters).then(() => this.write(task, src));
    }

    this.counter += value;
    // Linux wakes readers even for a write of zero.
    wakeAll(this.readWaiters);
    return COUNTER_SIZE;
  }

  /** Ready events as Linux's eventfd_poll reports them. */
  override readiness(): number {
    let events = 0;
    if (this.counter > 0n) events |= POLLIN | POLLRDNORM;
    if (this.counter === 0xffffffffffffffffn) events |= POLLERR;
    if (this.counter < EVENTFD_MAX) events |= POLLOUT | POLLWRNORM;
    return events;
  }

  override watchReadiness(events: number, wake: () => void): CancelWatch {
    // A watch for neither direction (only errors or hang-ups) is woken by any change.
    const read = (events & READ_EVENTS) !== 0 || (events & WRITE_EVENTS) === 0;
    const write = (events & WRITE_EVENTS) !== 0 || (events & READ_EVENTS) === 0;
    if (read) this.readWaiters.add(wake);
    if (write) this.writeWaiters.add(wake);
    return () => {
      this.readWaiters.delete(wake);
      this.writeWaiters.delete(wake);
    };
  }

  /** Waits for the next change that may let a blocked read or write go on; rejects with ERESTARTSYS on a signal. */
  private waitFor(task: Task, waiters: Set<() => void>): Promise<void> {
    return task.block<void>((resolve) => {
      waiters.add(resolve);
      return () => waiters.delete(resolve);
    });
  }
}

function wakeAll(waiters: Set<() => void>): void {
  if (waiters.size === 0) return;
  const woken = [...waiters];
  waiters.clear();
  for (const wake of woken) wake();
}
