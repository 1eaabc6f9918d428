/**
 * epoll instances. An instance keeps one interest entry per (file description, descriptor number)
 * pair. Readiness is not queued as events arrive. Instead epoll_wait calls readiness() on each
 * entry's file, as poll does, and waits on the files' watchReadiness() when nothing is ready.
 *
 * Each entry keeps one readiness watch armed while it is not `triggered`. When the watch fires, the
 * entry becomes triggered, which is the edge an EPOLLET entry reports, and the instance wakes its
 * waiters. The next scan clears the trigger and arms the watch again. A level-triggered entry is
 * reported whenever its file is ready. An EPOLLONESHOT entry is disabled once reported, until
 * EPOLL_CTL_MOD. An entry goes away with the last reference to its file description, as in Linux,
 * not when its descriptor number is closed while a dup() of it stays open.
 */
import { Errno, fail } from '../errno.js';
import { AnonymousInode } from './anon-inode.js';
import type { FileDescription, FileStat } from './file.js';
import { FileBase } from './file-base.js';
import { O_RDWR, S_IFDIR, S_IFMT, S_IFREG } from './flags.js';
import { type CancelWatch, POLLIN, POLLRDNORM } from './poll-events.js';

export const EPOLLIN = 0x1;
export const EPOLLPRI = 0x2;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;
export const EPOLLRDNORM = 0x40;
export const EPOLLRDBAND = 0x80;
export const EPOLLWRNORM = 0x100;
export const EPOLLWRBAND = 0x200;
export const EPOLLMSG = 0x400;
export const EPOLLRDHUP = 0x2000;
export const EPOLLEXCLUSIVE = 0x10000000;
export const EPOLLWAKEUP = 0x20000000;
export const EPOLLONESHOT = 0x40000000;
export const EPOLLET = 0x80000000;

/** Bits that name events, as opposed to the flags that change how an entry reports them. */
const EVENT_BITS = 0x0fffffff;

/** Bits EPOLLEXCLUSIVE may be combined with (Linux's EPOLLEXCLUSIVE_OK_BITS). */
export const EPOLLEXCLUSIVE_OK_BITS = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;

/** Maximum nesting of epoll instances inside one another (Linux's EP_MAX_NESTS). */
const MAX_NESTS = 4;

/** One event as epoll_wait returns it: the ready event bits and the entry's data. */
export interface ReadyEvent {
  readonly events: number;
  readonly data: bigint;
}

/**
 * Tests whether epoll may watch `file`. Linux rejects files without a poll method with EPERM,
 * which includes regular files and directories.
 */
export function isPollable(file: FileDescription): boolean {
  const type = file.stat().mode & S_IFMT;
  // NOTE: character devices without a poll method (/dev/null, /dev/zero) get EPERM on Linux
  // but are accepted here, where they report themselves always ready.
  return type !== S_IFREG && type !== S_IFDIR;
}

class InterestEntry {
  /** Whether the watch fired since the last scan: the edge an EPOLLET entry reports. */
  triggered = true;
  /** Whether an EPOLLONESHOT entry has reported and waits for EPOLL_CTL_MOD. */
  disabled = false;
  private cancelWatch: CancelWatch | undefined;

  constructor(
    readonly epoll: Epoll,
    readonly file: FileBase,
    readonly fd: number,
    public events: number,
    public data: bigint,
  ) {}

  get edgeTriggered(): boolean {
    return (this.events & EPOLLET) !== 0;
  }

  /**
   * Returns the events to report now, or 0. With `consume`, the report counts as delivered: the
   * edge is used up and a one-shot entry is disabled. Re-arms the watch when the entry is not
   * left triggered.
   */
  check(consume: boolean): number {
    if (this.disabled) return 0;
    const ready = this.file.readiness() & this.events & EVENT_BITS;
    const report = this.edgeTriggered && !this.triggered ? 0 : ready;
    if (this.triggered && (report === 0 || consume)) this.triggered = false;
    if (report !== 0 && consume && (this.events & EPOLLONESHOT) !== 0) {
      this.disabled = true;
      this.disarm();
      return report;
    }
    if (!this.triggered) this.arm();
    return report;
  }

  /** Marks the entry as changed by epoll_ctl: it is checked afresh at the next scan. */
  reset(): void {
    this.disarm();
    this.disabled = false;
    this.triggered = true;
  }

  disarm(): void {
    const cancel = this.cancelWatch;
    this.cancelWatch = undefined;
    cancel?.();
  }

  private arm(): void {
    if (this.cancelWatch !== undefined || this.disabled) return;
    let fired = false;
    const cancel = this.file.watchReadiness(this.events & EVENT_BITS, () => {
      // A file may call a watch more than once before it is cancelled.
      if (fired) return;
      fired = true;
      this.disarm();
      this.triggered = true;
      this.epoll.notify();
    });
    if (fired) cancel();
    else this.cancelWatch = cancel;
  }
}

export class Epoll extends FileBase {
  private readonly inode = new AnonymousInode();
  /** Interest entries by file description and descriptor number. */
  private readonly interest = new Map<FileBase, Map<number, InterestEntry>>();
  /** Every entry, in the order scans visit them. A reported level-triggered entry moves to the end. */
  private readonly order = new Set<InterestEntry>();
  /** Removers of the last-close hooks this instance set on watched descriptions. */
  private readonly closeHooks = new Map<FileBase, () => void>();
  /** Instances that watch this one, with how many entries each has for it. */
  private readonly parents = new Map<Epoll, number>();
  private readonly waiters = new Set<() => void>();

  constructor(flags: number) {
    super(O_RDWR | flags, 'anon_inode:[eventpoll]');
  }

  stat(): FileStat {
    return this.inode.stat();
  }

  /** EPOLL_CTL_ADD: EEXIST when the pair is watched already, ELOOP when nesting would loop or go too deep. */
  add(file: FileBase, fd: number, events: number, data: bigint): void {
    let byFd = this.interest.get(file);
    if (byFd?.has(fd)) fail(Errno.EEXIST);
    if (file instanceof Epoll) this.checkNesting(file);

    if (byFd === undefined) {
      byFd = new Map();
      this.interest.set(file, byFd);
      this.closeHooks.set(file, file.onLastClose(() => this.forget(file)));
    }
    const entry = new InterestEntry(this, file, fd, events, data);
    byFd.set(fd, entry);
    this.order.add(entry);
    if (file instanceof Epoll) file.parents.set(this, (file.parents.get(this) ?? 0) + 1);
    this.notify();
  }

  /** EPOLL_CTL_MOD: ENOENT when the pair is not watched, EINVAL when it was added with EPOLLEXCLUSIVE. */
  modify(file: FileBase, fd: number, events: number, data: bigint): void {
    const entry = this.interest.get(file)?.get(fd);
    if (entry === undefined) return fail(Errno.ENOENT);
    if ((entry.events & EPOLLEXCLUSIVE) !== 0) fail(Errno.EINVAL);
    entry.reset();
    entry.events = events;
    entry.data = data;
    this.notify();
  }

  /** EPOLL_CTL_DEL: ENOENT when the pair is not watched. */
  remove(file: FileBase, fd: number): void {
    const byFd = this.interest.get(file);
    const entry = byFd?.get(fd);
    if (byFd === undefined || entry === undefined) return fail(Errno.ENOENT);
    this.drop(entry);
    byFd.delete(fd);
    if (byFd.size > 0) return;
    this.interest.delete(file);
    this.closeHooks.get(file)?.();
    this.closeHooks.delete(file);
  }

  /** Returns up to `max` ready events and counts them as delivered. */
  collect(max: number): ReadyEvent[] {
    const ready: ReadyEvent[] = [];
    const rotate: InterestEntry[] = [];
    for (const entry of this.order) {
      if (ready.length >= max) break;
      const events = entry.check(true);
      if (events === 0) continue;
      ready.push({ events, data: entry.data });
      if (!entry.edgeTriggered) rotate.push(entry);
    }
    // Linux puts a reported level-triggered entry back at the tail of the ready list, so a small
    // maxevents still reaches every ready entry in turn.
    for (const entry of rotate) {
      this.order.delete(entry);
      this.order.add(entry);
    }
    return ready;
  }

  /** An epoll instance is readable while epoll_wait would return an event. */
  override readiness(): number {
    let found = false;
    for (const entry of this.order) {
      // Every entry is checked, not just up to the first ready one, so each re-arms its watch.
      if (entry.check(false) !== 0) found = true;
    }
    return found ? POLLIN | POLLRDNORM : 0;
  }

  override watchReadiness(_events: number, wake: () => void): CancelWatch {
    this.waiters.add(wake);
    // A triggered entry has no watch armed, so check it: that arms one unless the entry is ready.
    for (const entry of this.order) entry.check(false);
    return () => this.waiters.delete(wake);
  }

  /** Wakes every waiter: an entry's file may have become ready, or the interest list changed. */
  notify(): void {
    if (this.waiters.size === 0) return;
    const woken = [...this.waiters];
    this.waiters.clear();
    for (const wake of woken) wake();
  }

  override release(): void {
    for (const entry of this.order) this.drop(entry);
    this.order.clear();
    this.interest.clear();
    for (const removeHook of this.closeHooks.values()) removeHook();
    this.closeHooks.clear();
    this.notify();
  }

  /** Removes every entry for a description whose last reference was closed. */
  private forget(file: FileBase): void {
    const byFd = this.interest.get(file);
    if (byFd === undefined) return;
    for (const entry of byFd.values()) this.drop(entry);
    this.interest.delete(file);
    this.closeHooks.delete(file);
  }

  private drop(entry: InterestEntry): void {
    entry.disarm();
    this.order.delete(entry);
    if (!(entry.file instanceof Epoll)) return;
    const parents = entry.file.parents;
    const count = (parents.get(this) ?? 0) - 1;
    if (count > 0) parents.set(this, count);
    else parents.delete(this);
  }

  /** Fails with ELOOP when watching `child` would make a cycle or nest more than MAX_NESTS deep. */
  private checkNesting(child: Epoll): void {
    const below = child.depthBelow(this, 0);
    if (below === Infinity || below + 1 + this.depthAbove(0) > MAX_NESTS) fail(Errno.ELOOP);
  }

  /** Returns the levels of epoll instances under this one, or Infinity when `target` is among them or the walk is too deep. */
  private depthBelow(target: Epoll, level: number): number {
    if (this === target || level > MAX_NESTS) return Infinity;
    let depth = 0;
    for (const file of this.interest.keys()) {
      if (file instanceof Epoll) depth = Math.max(depth, 1 + file.depthBelow(target, level + 1));
    }
    return depth;
  }

  /** Returns the levels of epoll instances that watch this one, directly or through others. */
  private depthAbove(level: number): number {
    if (level > MAX_NESTS) return Infinity;
    let depth = 0;
    for (const parent of this.parents.keys()) depth = Math.max(depth, 1 + parent.depthAbove(level + 1));
    return depth;
  }
}
