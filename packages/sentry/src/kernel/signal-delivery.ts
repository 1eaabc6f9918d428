/**
 * The interface between the task code and the signal code: sending a signal to a thread group,
 * and acting on pending signals before a task returns to application code. The work is done in
 * signals/.
 */
import { SI_USER } from './signals/constants.js';
import { handleSignals } from './signals/deliver.js';
import { sendToGroup } from './signals/send.js';
import { kernelSigInfo, userSigInfo, type SigInfo } from './signals/siginfo.js';
import type { Task } from './task.js';
import type { ThreadGroup } from './thread-group.js';

export { isRestartCode } from './signals/deliver.js';

/**
 * Sends `signo` to thread group `group`, as kill(2) does, from `sender` (undefined: the kernel).
 * `info` replaces the siginfo the call would otherwise build, as SIGCHLD's does.
 */
export function sendGroupSignal(group: ThreadGroup, signo: number, sender?: Task, info?: SigInfo): void {
  const sent = info ?? (sender === undefined ? kernelSigInfo(signo) : userSigInfo(signo, SI_USER, sender.tgid, sender.creds.uid));
  sendToGroup(group, sent, sender);
}

/**
 * Acts on what needs the task's attention before it returns to application code. `syscallResult`
 * is the result of the system call that just ended (already in rax), or undefined after a fault,
 * a signal or an interrupt. Returns a promise when the task must wait, because its thread group
 * is stopped, before it may run again.
 */
export function handleAttention(task: Task, syscallResult: number | undefined): void | Promise<void> {
  return handleSignals(task, syscallResult);
}
