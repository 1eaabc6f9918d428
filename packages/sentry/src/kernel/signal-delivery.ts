/**
 * What the task code needs from the signal code: sending a signal to a thread group, and acting
 * on pending signals before a task returns to application code.
 *
 * NOTE: until signals are queued and delivered to handlers, a signal that is neither ignored nor
 * blocked ends the receiving thread group as its default action would, and a system call that a
 * wait interrupted returns EINTR instead of being restarted.
 */
import { ERESTART_RESTARTBLOCK, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS, Errno } from '../errno.js';
import { deliverUnblocked, signalSelf } from './signals.js';
import type { Task } from './task.js';
import type { ThreadGroup } from './thread-group.js';

/** Sends `signo` to thread group `group`, as kill(2) does, from `sender` (undefined: the kernel). */
export function sendGroupSignal(group: ThreadGroup, signo: number, _sender?: Task): void {
  const target = group.anyTask;
  if (target === undefined || group.exitStatus !== undefined) return;
  signalSelf(target, signo);
}

/** Whether `result` is one of the kernel-internal codes of an interrupted system call. */
export function isRestartCode(result: number): boolean {
  return result === -ERESTARTSYS || result === -ERESTARTNOINTR || result === -ERESTARTNOHAND || result === -ERESTART_RESTARTBLOCK;
}

/**
 * Acts on what needs the task's attention before it returns to application code. `syscallResult`
 * is the result of the system call that just ended (already in rax), or undefined after a fault,
 * a signal or an interrupt.
 */
export function handleAttention(task: Task, syscallResult: number | undefined): void {
  task.attention = false;
  if (syscallResult !== undefined && isRestartCode(syscallResult)) task.regs.rax = -Errno.EINTR;
  deliverUnblocked(task);
}
