/**
 * Handling of platform failures during a switch. When a platform reports that the program
 * destroyed its own stub (an error with code ERR_TSVISOR_STUB_DESTROYED and a `signal`), the
 * sentry ends that thread group as if the signal had killed it, because the program caused it.
 * Any other failure is the platform's, and it ends the whole sandbox with a one-line message that
 * names the platform.
 */
import { killGroupBySignal } from './signals/send.js';
import type { Task } from './task.js';

const STUB_DESTROYED = 'ERR_TSVISOR_STUB_DESTROYED';

/** A platform failure during a switch, with a one-line message that names the platform. */
export class SwitchError extends Error {
  constructor(
    readonly platform: string,
    readonly cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`platform ${platform} failed to run the program: ${reason.split('\n')[0]}`);
    this.name = 'SwitchError';
  }
}

/** Returns the signal of a stub-destroyed error, or undefined for any other error. */
function stubDestroyedSignal(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code, signal } = error as Error & { code?: unknown; signal?: unknown };
  if (code !== STUB_DESTROYED || typeof signal !== 'number' || !Number.isInteger(signal) || signal < 1 || signal > 64) return undefined;
  return signal;
}

/**
 * Handles an error that ended `task`'s loop: a destroyed stub kills the task's thread group with
 * the stub's signal, anything else aborts the sandbox.
 */
export function handleLoopError(task: Task, error: unknown): void {
  const cause = error instanceof SwitchError ? error.cause : error;
  const signal = stubDestroyedSignal(cause);
  if (signal !== undefined) {
    killGroupBySignal(task.threadGroup, signal);
    return;
  }
  task.kernel.abort(error);
}
