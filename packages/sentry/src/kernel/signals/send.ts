/**
 * Sending signals. A signal goes to one thread (tkill, tgkill, faults) or to a thread group (kill,
 * SIGPIPE, alarm, SIGCHLD), is queued on the matching pending set, and one thread that does not
 * block it is interrupted to take it. As in Linux, some effects happen at send time:
 * - a signal whose disposition is to ignore it is discarded unless it is blocked;
 * - SIGCONT resumes a stopped group and discards pending stop signals;
 * - a stop signal discards a pending SIGCONT;
 * - SIGKILL ends the thread group at once.
 */
import type { Task } from '../task.js';
import type { ThreadGroup } from '../thread-group.js';
import {
  DefaultAction,
  defaultAction,
  SA_NOCLDSTOP,
  SIG_DFL,
  SIG_IGN,
  Signal,
  signalBit,
  STOP_MASK,
} from './constants.js';
import { newSigInfo, SigInfoField, sigInfoSigno, type SigInfo } from './siginfo.js';
import { accepts, groupSignalsOf, updateAttention, type TaskSignals } from './state.js';

/** si_code of SIGCHLD for a child that stopped or continued. */
const CLD_STOPPED = 5;
const CLD_CONTINUED = 6;

/** Tests whether the disposition of `signo` ignores it. Such signals are dropped unless blocked. */
export function isIgnored(signals: TaskSignals, signo: number): boolean {
  const handler = signals.actions[signo - 1].handler;
  if (handler === SIG_IGN) return true;
  return handler === SIG_DFL && defaultAction(signo) === DefaultAction.Ignore;
}

/** Tests whether `task` keeps an ignored `signo` pending, because it blocks it or rt_sigtimedwait waits for it. */
function keepsIgnored(task: Task, signo: number): boolean {
  const bit = signalBit(signo);
  return (task.signals.blocked & bit) !== 0n || (task.signals.waitSet & bit) !== 0n;
}

/** Makes `task` handle its signals soon: interrupts it unless it is the sender, which checks anyway. */
function notify(task: Task, sender: Task | undefined): void {
  updateAttention(task);
  if (task.attention && task !== sender) task.interrupt();
}

/**
 * Sends the parent of `group` a SIGCHLD for a stop or a continue, unless its SIGCHLD action has
 * SA_NOCLDSTOP.
 */
function notifyParent(group: ThreadGroup, code: number, status: number): void {
  const parentTask = group.parent?.anyTask;
  if (parentTask === undefined) return;
  if ((parentTask.signals.actions[Signal.SIGCHLD - 1].flags & SA_NOCLDSTOP) !== 0n) return;
  const info = newSigInfo(Signal.SIGCHLD, code);
  info.writeInt32LE(group.tgid, SigInfoField.pid);
  info.writeUInt32LE(parentTask.creds.uid >>> 0, SigInfoField.uid);
  info.writeInt32LE(status, SigInfoField.status);
  sendToGroup(group.parent!, info);
}

/** Stops every thread of `group` at its next return to user mode, as a stop signal's default action does. */
export function stopGroup(group: ThreadGroup, signo: number): void {
  const shared = groupSignalsOf(group);
  if (shared.stopSignal !== 0 || group.exitStatus !== undefined) return;
  shared.stopSignal = signo;
  for (const member of group.tasks) notify(member, undefined);
  group.reportStop(signo);
  notifyParent(group, CLD_STOPPED, signo);
}

/** Ends a group stop, as SIGCONT does. */
export function continueGroup(group: ThreadGroup): void {
  const shared = groupSignalsOf(group);
  if (shared.stopSignal === 0) return;
  shared.stopSignal = 0;
  shared.resumeWaitersNow();
  for (const member of group.tasks) updateAttention(member);
  group.reportContinue();
  notifyParent(group, CLD_CONTINUED, Signal.SIGCONT);
}

/** Applies the send-time effects of SIGCONT and the stop signals to a group. */
function prepareGroup(group: ThreadGroup, signo: number): void {
  const shared = groupSignalsOf(group);
  if (signo === Signal.SIGCONT) {
    shared.pending.discard(STOP_MASK);
    for (const member of group.tasks) member.signals.pending.discard(STOP_MASK);
    continueGroup(group);
    return;
  }
  if ((signalBit(signo) & STOP_MASK) !== 0n) {
    const contBit = signalBit(Signal.SIGCONT);
    shared.pending.discard(contBit);
    for (const member of group.tasks) member.signals.pending.discard(contBit);
  }
}

/** Ends every thread of the group, as a fatal signal does. */
export function killGroupBySignal(group: ThreadGroup, signo: number): void {
  group.beginExit({ signal: signo });
  groupSignalsOf(group).resumeWaitersNow();
}

/**
 * Sends `info` to the thread `target`. `sender` is the task making the call, if any. Returns
 * false when the signal was discarded.
 */
export function sendToThread(target: Task, info: SigInfo, sender?: Task): boolean {
  const signals = target.signals;
  const signo = sigInfoSigno(info);
  if (target.exiting) return false;
  prepareGroup(target.threadGroup, signo);
  if (signo === Signal.SIGKILL) {
    killGroupBySignal(target.threadGroup, signo);
    return true;
  }
  if (isIgnored(signals, signo) && !keepsIgnored(target, signo)) return false;
  if (!signals.pending.enqueue(info)) return false;
  notify(target, sender);
  return true;
}

/**
 * Sends `info` to thread group `group`. The thread that takes it is the first that does not block
 * it, trying the leader first as Linux prefers the main thread. When all threads block it, it
 * stays pending for the group until one unblocks it. Returns false when the signal was discarded.
 */
export function sendToGroup(group: ThreadGroup, info: SigInfo, sender?: Task): boolean {
  const signo = sigInfoSigno(info);
  if (group.exitStatus !== undefined || group.zombie) return false;
  prepareGroup(group, signo);
  if (signo === Signal.SIGKILL) {
    killGroupBySignal(group, signo);
    return true;
  }
  const leader = group.anyTask;
  if (leader === undefined) return false;
  if (isIgnored(leader.signals, signo) && [...group.tasks].every((task) => !keepsIgnored(task, signo))) return false;
  if (!groupSignalsOf(group).pending.enqueue(info)) return false;
  let taker: Task | undefined;
  if (accepts(leader, signo)) taker = leader;
  else {
    for (const task of group.tasks) {
      if (accepts(task, signo)) {
        taker = task;
        break;
      }
    }
  }
  if (taker !== undefined) notify(taker, sender);
  return true;
}
