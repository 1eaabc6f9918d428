/**
 * Interval timers of a thread group (setitimer, getitimer, alarm). ITIMER_REAL sends SIGALRM when
 * it expires and re-arms itself with its interval.
 * NOTE: ITIMER_VIRTUAL (SIGVTALRM) and ITIMER_PROF (SIGPROF) count wall-clock time, because the
 * sentry does not measure the CPU time a program spends in its own host process. For a program
 * that keeps a CPU busy, as profilers expect, the two are close.
 */
import type { ThreadGroup } from '../thread-group.js';
import { Signal } from './constants.js';
import { sendToGroup } from './send.js';
import { kernelSigInfo } from './siginfo.js';
import { groupSignalsOf } from './state.js';

export const ITIMER_REAL = 0;
export const ITIMER_VIRTUAL = 1;
export const ITIMER_PROF = 2;

const TIMER_SIGNALS = [Signal.SIGALRM, Signal.SIGVTALRM, Signal.SIGPROF];

/** Maximum delay of setTimeout, in milliseconds; a longer timer waits in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Time left and interval of a timer, in nanoseconds; value 0 means disarmed. */
export interface TimerSetting {
  value: bigint;
  interval: bigint;
}

class IntervalTimer {
  /** Monotonic time of the next expiry, in nanoseconds, or 0n when disarmed. */
  private expiry = 0n;
  private interval = 0n;
  private handle: NodeJS.Timeout | undefined;
  private unregister: (() => void) | undefined;

  constructor(
    private readonly group: ThreadGroup,
    private readonly signo: number,
  ) {}

  get(): TimerSetting {
    if (this.expiry === 0n) return { value: 0n, interval: this.interval };
    const left = this.expiry - process.hrtime.bigint();
    // An expired timer whose callback has not run yet still reports a tiny positive value, as Linux does.
    return { value: left > 0n ? left : 1000n, interval: this.interval };
  }

  set(setting: TimerSetting): TimerSetting {
    const old = this.get();
    this.cancel();
    this.interval = setting.interval;
    if (setting.value !== 0n) this.arm(process.hrtime.bigint() + setting.value);
    return old;
  }

  cancel(): void {
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.handle = undefined;
    this.expiry = 0n;
    this.unregister?.();
    this.unregister = undefined;
  }

  private arm(expiry: bigint): void {
    this.expiry = expiry;
    this.unregister ??= groupSignalsOf(this.group).addReleaseHook(() => this.cancel());
    this.schedule();
  }

  private schedule(): void {
    const leftNs = this.expiry - process.hrtime.bigint();
    const ms = leftNs <= 0n ? 0 : Math.min(Math.ceil(Number(leftNs) / 1e6), MAX_TIMER_MS);
    this.handle = setTimeout(() => this.fire(), ms);
  }

  private fire(): void {
    this.handle = undefined;
    const now = process.hrtime.bigint();
    // setTimeout may run a little early, and long timers wait in steps.
    if (now < this.expiry) {
      this.schedule();
      return;
    }
    if (this.group.exitStatus !== undefined || this.group.zombie) {
      this.cancel();
      return;
    }
    if (this.interval !== 0n) {
      // Expiries missed while the sentry was busy are not queued, as Linux's real timer merges them.
      let next = this.expiry + this.interval;
      if (next <= now) next = now + this.interval;
      this.expiry = next;
      this.schedule();
    } else {
      this.cancel();
    }
    sendToGroup(this.group, kernelSigInfo(this.signo));
  }
}

const timers = new WeakMap<ThreadGroup, IntervalTimer[]>();

/** Returns interval timer `which` (ITIMER_REAL, ITIMER_VIRTUAL or ITIMER_PROF) of `group`. */
export function intervalTimer(group: ThreadGroup, which: number): IntervalTimer {
  let list = timers.get(group);
  if (list === undefined) {
    list = TIMER_SIGNALS.map((signo) => new IntervalTimer(group, signo));
    timers.set(group, list);
  }
  return list[which];
}
