/**
 * Sleeping in system calls (nanosleep, clock_nanosleep, pause, rt_sigsuspend) through
 * Task.block(), so that a signal ends the sleep: block() then rejects with SysError(ERESTARTSYS)
 * and the caller turns that into the restart code its system call uses.
 */
import { SysError } from '../../errno.js';
import type { Task } from '../task.js';

/** Maximum delay of setTimeout, in milliseconds; a longer sleep waits in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Waits for `ms` milliseconds. Resolves 0 when the time passed, or the milliseconds still left
 * (more than 0) when a signal or the task's exit ended the wait first.
 */
export async function sleepInterruptible(task: Task, ms: number): Promise<number> {
  const deadline = performance.now() + ms;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) return 0;
    const step = Math.min(Math.ceil(left), MAX_TIMER_MS);
    try {
      await task.block<void>((resolve) => {
        const timer = setTimeout(resolve, step);
        return () => clearTimeout(timer);
      });
    } catch (error) {
      if (!(error instanceof SysError)) throw error;
      return Math.max(deadline - performance.now(), Number.MIN_VALUE);
    }
  }
}

/** Waits until a signal or the task's exit interrupts it, as pause and rt_sigsuspend do. */
export async function waitForSignal(task: Task): Promise<void> {
  try {
    await task.block<void>(() => () => {});
  } catch (error) {
    if (!(error instanceof SysError)) throw error;
  }
}
