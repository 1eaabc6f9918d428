/**
 * Futex wait queues, one per futex key. As on Linux, a private futex (FUTEX_PRIVATE_FLAG), and any
 * futex in a private mapping, is keyed by its memory manager and user address, so the threads of
 * one process meet on it. A shared futex in a MAP_SHARED mapping is keyed by the memory file and
 * the word's offset in it. So processes that share the page, such as a MAP_SHARED mapping inherited
 * across fork, meet on it at whatever address each one maps it (mremap may have moved it).
 *
 * Checking the futex word and queueing the waiter happen in one synchronous step of the sentry,
 * and every wake-up also goes through the sentry, so no wake-up can slip in between them.
 *
 * NOTE: a shared key does not keep its page allocated. When every mapping of the page goes away
 * while a thread waits on it and the memory file hands the page out again, a wake-up on the new
 * use of the page can wake that waiter. Futex users must already tolerate such spurious wake-ups.
 * NOTE: MAP_SHARED file mappings are private copies of the file for now, so two processes that
 * map the same file separately (rather than inheriting one mapping) do not meet on its futexes.
 */
import { Errno, fail, SysError } from '../errno.js';
import type { MemoryManager } from '../mm/memory-manager.js';

/** FUTEX_BITSET_MATCH_ANY: a waiter woken by any bitset. */
export const BITSET_ANY = 0xffffffff;

/** The identity of one futex, and so of its wait queue. */
export interface FutexKey {
  /** The memory manager for a private key, the memory file for a shared one. */
  readonly owner: object;
  /** The user address for a private key, the byte offset in the memory file for a shared one. */
  readonly index: number;
}

export interface FutexWaiter {
  /** The futex the waiter is queued on. A requeue moves the waiter to another. */
  key: FutexKey;
  readonly bitset: number;
  /** Ends the wait successfully; the waiter is already off its queue. */
  readonly wake: () => void;
}

/**
 * Returns the key of the futex word at `addr`. `isPrivate` is FUTEX_PRIVATE_FLAG: such a futex is
 * keyed by process and address without looking at the mapping, so it may be unmapped, as on Linux.
 * A shared one must be mapped readable. Throws EINVAL for a misaligned word and EFAULT otherwise.
 */
export function futexKey(mm: MemoryManager, addr: number, isPrivate: boolean): FutexKey {
  if (addr % 4 !== 0) fail(Errno.EINVAL);
  if (!(addr >= 0) || addr + 4 > mm.layout.maxAddress) fail(Errno.EFAULT);
  if (isPrivate) return { owner: mm, index: addr };

  const offset = mm.sharedFileOffset(addr);
  if (offset < 0) return { owner: mm, index: addr };
  return { owner: mm.memoryFile, index: offset };
}

/** Returns whether two keys name the same futex. */
export function sameFutex(left: FutexKey, right: FutexKey): boolean {
  return left.owner === right.owner && left.index === right.index;
}

export class FutexTable {
  private readonly queues = new WeakMap<object, Map<number, FutexWaiter[]>>();

  /** Queues `waiter` on the futex of its key. */
  enqueue(waiter: FutexWaiter): void {
    let byIndex = this.queues.get(waiter.key.owner);
    if (byIndex === undefined) {
      byIndex = new Map();
      this.queues.set(waiter.key.owner, byIndex);
    }
    const queue = byIndex.get(waiter.key.index);
    if (queue === undefined) byIndex.set(waiter.key.index, [waiter]);
    else queue.push(waiter);
  }

  /** Removes `waiter` from its queue (a timeout or an interrupted wait). */
  remove(waiter: FutexWaiter): void {
    const byIndex = this.queues.get(waiter.key.owner);
    const queue = byIndex?.get(waiter.key.index);
    if (byIndex === undefined || queue === undefined) return;
    const index = queue.indexOf(waiter);
    if (index >= 0) queue.splice(index, 1);
    if (queue.length === 0) byIndex.delete(waiter.key.index);
  }

  /**
   * Wakes up to `count` waiters of the futex whose bitset intersects `bitset` and returns how many.
   * A count of zero or less wakes one, as FUTEX_WAKE and FUTEX_WAKE_OP do on Linux.
   */
  wakeKey(key: FutexKey, count: number, bitset = BITSET_ANY): number {
    const byIndex = this.queues.get(key.owner);
    const queue = byIndex?.get(key.index);
    if (byIndex === undefined || queue === undefined) return 0;
    const limit = Math.max(1, count);
    let woken = 0;
    for (let i = 0; i < queue.length && woken < limit;) {
      const waiter = queue[i];
      if ((waiter.bitset & bitset) === 0) {
        i++;
        continue;
      }
      queue.splice(i, 1);
      woken++;
      waiter.wake();
    }
    if (queue.length === 0) byIndex.delete(key.index);
    return woken;
  }

  /**
   * Wakes up to `count` waiters of the shared futex at `addr` in `mm`, as a thread's exit does for
   * its clear_child_tid word and its robust futexes. A word that is no longer mapped wakes no waiter.
   */
  wake(mm: MemoryManager, addr: number, count: number): number {
    let key: FutexKey;
    try {
      key = futexKey(mm, addr, false);
    } catch (error) {
      if (error instanceof SysError) return 0;
      throw error;
    }
    return this.wakeKey(key, count);
  }

  /**
   * Wakes up to `wakeCount` waiters of `from` and moves up to `requeueCount` of the rest to `to`.
   * Returns the number woken plus the number moved, as FUTEX_CMP_REQUEUE does. When both keys
   * name one futex, the waiters that would move stay where they are but still count.
   */
  requeue(from: FutexKey, wakeCount: number, to: FutexKey, requeueCount: number): number {
    const woken = wakeCount > 0 ? this.wakeKey(from, wakeCount) : 0;
    const byIndex = this.queues.get(from.owner);
    const queue = byIndex?.get(from.index);
    if (byIndex === undefined || queue === undefined) return woken;
    if (sameFutex(from, to)) return woken + Math.min(queue.length, requeueCount);

    const moved = queue.splice(0, requeueCount);
    if (queue.length === 0) byIndex.delete(from.index);
    for (const waiter of moved) {
      waiter.key = to;
      this.enqueue(waiter);
    }
    return woken + moved.length;
  }
}
