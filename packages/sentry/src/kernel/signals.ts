/**
 * Sending signals to the calling thread group. Without delivery to handlers, a signal that is
 * neither ignored nor blocked ends the thread group as its default action would.
 * NOTE: a signal whose handler is installed also ends the thread group, and signals whose default
 * action is to stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU) terminate it instead.
 */
import { Errno, fail } from '../errno.js';
import { NSIG, SIGKILL, SIGSTOP } from './signal-state.js';
import type { Task } from './task.js';

export const SIGPIPE = 13;

const SIG_IGN = 1n;

/** Signals whose default action is to do nothing (SIGCHLD, SIGCONT, SIGURG, SIGWINCH). */
const IGNORED_BY_DEFAULT = new Set([17, 18, 23, 28]);

/** Applies `signo` to the caller's own thread group. */
export function signalSelf(task: Task, signo: number): number {
  if (signo === 0) return 0;
  if (signo < 1 || signo > NSIG) fail(Errno.EINVAL);
  const action = task.signals.actions[signo - 1];
  if (action.handler === SIG_IGN && signo !== SIGKILL && signo !== SIGSTOP) return 0;
  if (IGNORED_BY_DEFAULT.has(signo)) return 0;
  const bit = 1n << BigInt(signo - 1);
  if ((task.signals.blocked & bit) !== 0n) {
    // A blocked signal stays pending until the mask lets it through (see rtSigprocmask).
    task.signals.pending |= bit;
    return 0;
  }
  task.killGroup(signo);
  return 0;
}

/** Applies the lowest pending signal that is no longer blocked, as the return to user mode would. */
export function deliverUnblocked(task: Task): void {
  const deliverable = task.signals.pending & ~task.signals.blocked;
  if (deliverable === 0n) return;
  let signo = 1;
  while ((deliverable & (1n << BigInt(signo - 1))) === 0n) signo++;
  task.signals.pending &= ~(1n << BigInt(signo - 1));
  signalSelf(task, signo);
}
