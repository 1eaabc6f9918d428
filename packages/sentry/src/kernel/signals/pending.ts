/**
 * A set of pending signals: the private set of one thread, or the shared set of a thread group.
 * A standard signal is pending at most once, so a second one sent before delivery is lost. A
 * real-time signal queues every instance with its own siginfo, delivered in the order sent.
 */
import { isRealtime, signalBit } from './constants.js';
import { sigInfoSigno, type SigInfo } from './siginfo.js';

/**
 * Maximum number of real-time signals one set queues, standing in for RLIMIT_SIGPENDING.
 * NOTE: Linux counts this limit per user across all processes, not per set.
 */
export const MAX_QUEUED_REALTIME = 4096;

export class PendingSignals {
  /** Signals with at least one queued instance. */
  set = 0n;
  private readonly queues: Array<SigInfo[] | undefined> = [];
  private queuedRealtime = 0;

  /** Queues `info`. Returns false when it was dropped: a standard signal already pending, or the queue is full. */
  enqueue(info: SigInfo): boolean {
    const signo = sigInfoSigno(info);
    const bit = signalBit(signo);
    if (!isRealtime(signo)) {
      if ((this.set & bit) !== 0n) return false;
      this.queues[signo] = [info];
      this.set |= bit;
      return true;
    }
    if (this.queuedRealtime >= MAX_QUEUED_REALTIME) return false;
    const queue = this.queues[signo] ?? [];
    queue.push(info);
    this.queues[signo] = queue;
    this.queuedRealtime++;
    this.set |= bit;
    return true;
  }

  /** Removes and returns the oldest instance of `signo`, or undefined when none is pending. */
  dequeue(signo: number): SigInfo | undefined {
    const queue = this.queues[signo];
    const info = queue?.shift();
    if (info === undefined) return undefined;
    if (isRealtime(signo)) this.queuedRealtime--;
    if (queue!.length === 0) {
      this.queues[signo] = undefined;
      this.set &= ~signalBit(signo);
    }
    return info;
  }

  /** Drops every pending instance of the signals in `mask`. */
  discard(mask: bigint): void {
    for (let signo = 1; (this.set & mask) !== 0n; signo++) {
      const bit = signalBit(signo);
      if ((mask & bit) === 0n || (this.set & bit) === 0n) continue;
      if (isRealtime(signo)) this.queuedRealtime -= this.queues[signo]!.length;
      this.queues[signo] = undefined;
      this.set &= ~bit;
    }
  }
}
