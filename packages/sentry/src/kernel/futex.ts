/**
 * Futex wait queues. A futex is named by its memory manager and its user address, so threads of
 * one process (CLONE_VM) meet on the same queue whether they use private or shared futexes.
 *
 * Checking the futex word and queueing the waiter happen in one synchronous step of the sentry,
 * and every wake-up also goes through the sentry, so no wake-up can slip in between them.
 * NOTE: processes that share memory pages without sharing a memory manager (MAP_SHARED across
 * fork) do not meet on a shared futex, because the key is not the page of the memory file.
 */
import type { MemoryManager } from '../mm/memory-manager.js';

/** FUTEX_BITSET_MATCH_ANY: a waiter woken by any bitset. */
export const BITSET_ANY = 0xffffffff;

export interface FutexWaiter {
  mm: MemoryManager;
  addr: number;
  readonly bitset: number;
  /** Ends the wait successfully; the waiter is already off its queue. */
  readonly wake: () => void;
}

export class FutexTable {
  private readonly queues = new WeakMap<MemoryManager, Map<number, FutexWaiter[]>>();

  /** Queues `waiter` on its futex. */
  enqueue(waiter: FutexWaiter): void {
    let byAddress = this.queues.get(waiter.mm);
    if (byAddress === undefined) {
      byAddress = new Map();
      this.queues.set(waiter.mm, byAddress);
    }
    const queue = byAddress.get(waiter.addr);
    if (queue === undefined) byAddress.set(waiter.addr, [waiter]);
    else queue.push(waiter);
  }

  /** Removes `waiter` from its queue (a timeout or an interrupted wait). */
  remove(waiter: FutexWaiter): void {
    const byAddress = this.queues.get(waiter.mm);
    const queue = byAddress?.get(waiter.addr);
    if (byAddress === undefined || queue === undefined) return;
    const index = queue.indexOf(waiter);
    if (index >= 0) queue.splice(index, 1);
    if (queue.length === 0) byAddress.delete(waiter.addr);
  }

  /** Wakes up to `count` waiters of the futex whose bitset intersects `bitset`; returns how many. */
  wake(mm: MemoryManager, addr: number, count: number, bitset = BITSET_ANY): number {
    const byAddress = this.queues.get(mm);
    const queue = byAddress?.get(addr);
    if (byAddress === undefined || queue === undefined) return 0;
    let woken = 0;
    for (let i = 0; i < queue.length && woken < count;) {
      const waiter = queue[i];
      if ((waiter.bitset & bitset) === 0) {
        i++;
        continue;
      }
      queue.splice(i, 1);
      woken++;
      waiter.wake();
    }
    if (queue.length === 0) byAddress.delete(addr);
    return woken;
  }

  /**
   * Wakes up to `wakeCount` waiters of `addr` and moves up to `requeueCount` of the rest to
   * `target`. Returns the number woken plus the number moved, as FUTEX_CMP_REQUEUE does.
   */
  requeue(mm: MemoryManager, addr: number, wakeCount: number, target: number, requeueCount: number): number {
    const woken = this.wake(mm, addr, wakeCount);
    const byAddress = this.queues.get(mm);
    const queue = byAddress?.get(addr);
    if (byAddress === undefined || queue === undefined || addr === target) return woken;
    const moved = queue.splice(0, requeueCount);
    if (queue.length === 0) byAddress.delete(addr);
    for (const waiter of moved) {
      waiter.addr = target;
      this.enqueue(waiter);
    }
    return woken + moved.length;
  }
}
