/**
 * Signal delivery, run by the task loop before it switches into the application whenever
 * Task.attention is set. It takes pending signals one at a time: synchronous faults first, then
 * the thread's own before the group's. Each gets its disposition: ignore, the default action
 * (terminate, stop, continue), or a signal frame that makes the application enter its handler.
 * Delivery also resolves a system call that a signal interrupted. With a handler the call fails
 * with EINTR unless SA_RESTART allows a restart, and without one the call is restarted.
 */
import createDebug from 'debug';
import { ERESTART_RESTARTBLOCK, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS, Errno, SysError } from '../../errno.js';
import { Sys } from '../../syscalls/numbers.js';
import { signalName } from '../strace.js';
import type { Task } from '../task.js';
import {
  DefaultAction,
  defaultAction,
  lowestSignal,
  SA_NODEFER,
  SA_ONSTACK,
  SA_RESETHAND,
  SA_RESTART,
  SIG_DFL,
  SIG_IGN,
  Signal,
  signalBit,
} from './constants.js';
import { pushFrame } from './frame.js';
import { killGroupBySignal, stopGroup } from './send.js';
import { sigInfoSigno, type SigInfo } from './siginfo.js';
import { defaultSignalAction, groupSignalsOf, setBlocked, SS_AUTODISARM, SS_DISABLE, updateAttention, type SignalAction } from './state.js';

const log = createDebug('tsvisor:sentry:signal');

/** Length of the SYSCALL instruction, which a restarted call executes again. */
const SYSCALL_LENGTH = 2;

/** Takes the next deliverable signal of the thread, or undefined when there is none. */
function dequeue(task: Task): SigInfo | undefined {
  const signals = task.signals;
  const shared = groupSignalsOf(task.threadGroup).pending;
  const own = signals.pending.set & ~signals.blocked;
  const signo = own !== 0n ? lowestSignal(own) : lowestSignal(shared.set & ~signals.blocked);
  if (signo === 0) return undefined;
  return own !== 0n ? signals.pending.dequeue(signo) : shared.dequeue(signo);
}

/** Tests whether `result` is one of the kernel-internal codes of an interrupted system call. */
export function isRestartCode(result: number | undefined): boolean {
  return result === -ERESTARTSYS || result === -ERESTARTNOINTR || result === -ERESTARTNOHAND || result === -ERESTART_RESTARTBLOCK;
}

/**
 * Resolves a system call that returned the restart code `result`. `action` is the handler about
 * to run, or undefined when no handler runs and the call simply starts again.
 */
function resolveInterruptedCall(task: Task, result: number, action: SignalAction | undefined): void {
  const regs = task.regs;
  const code = -result;
  if (action !== undefined) {
    const restart = code === ERESTARTNOINTR || (code === ERESTARTSYS && (action.flags & SA_RESTART) !== 0n);
    if (!restart) {
      regs.rax = -Errno.EINTR;
      task.signals.restartBlock = undefined;
      return;
    }
  }
  regs.rax = code === ERESTART_RESTARTBLOCK ? Sys.restart_syscall : regs.orig_rax;
  regs.rip -= SYSCALL_LENGTH;
}

/** Enters the handler of `action` for `info`: frame, mask, SA_RESETHAND. */
function runHandler(task: Task, info: SigInfo, action: SignalAction): void {
  const signals = task.signals;
  const signo = sigInfoSigno(info);

  const savedMask = signals.savedMask ?? signals.blocked;
  signals.savedMask = undefined;
  const onAltStack = (action.flags & SA_ONSTACK) !== 0n && (signals.altStack.flags & SS_DISABLE) === 0;
  try {
    pushFrame(task, {
      handler: Number(action.handler),
      restorer: Number(action.restorer),
      onAltStack,
      info,
      savedMask,
    });
  } catch (error) {
    if (!(error instanceof SysError)) throw error;
    // The stack cannot take the frame: Linux kills the thread group with SIGSEGV.
    if (log.enabled) log('task %d: cannot write the frame for %s at rsp 0x%s', task.tid, signalName(signo), task.regs.rsp.toString(16));
    killGroupBySignal(task.threadGroup, Signal.SIGSEGV);
    return;
  }
  if (onAltStack && (signals.altStack.flags & SS_AUTODISARM) !== 0) {
    signals.altStack = { sp: 0n, flags: SS_DISABLE, size: 0n };
  }

  let mask = signals.blocked | action.mask;
  if ((action.flags & SA_NODEFER) === 0n) mask |= signalBit(signo);
  if ((action.flags & SA_RESETHAND) !== 0n) signals.actions[signo - 1] = defaultSignalAction();
  signals.faultTrapNumber = 0;
  signals.faultErrorCode = 0;
  signals.faultAddress = 0;
  setBlocked(task, mask);
  if (log.enabled) log('task %d: %s to handler 0x%s', task.tid, signalName(signo), action.handler.toString(16));
}

/** Waits until the stopped group of `task` is continued or killed. */
function waitWhileStopped(task: Task): Promise<void> {
  const shared = groupSignalsOf(task.threadGroup);
  return new Promise<void>((resolve) => {
    shared.onResume(resolve);
  });
}

/**
 * Acts on the task's pending signals before it returns to application code. `syscallResult` is
 * the result of the system call that just ended (already in rax), or undefined after a fault, a
 * signal or an interrupt. A restart code there becomes EINTR or a restart. Returns a promise only
 * when the thread group is stopped and the task must wait for SIGCONT or SIGKILL.
 */
export function handleSignals(task: Task, syscallResult: number | undefined): void | Promise<void> {
  const signals = task.signals;
  const shared = groupSignalsOf(task.threadGroup);
  // rt_sigreturn sets orig_rax to -1: the rax it restored is the interrupted code's, never a restart code.
  let pendingRestart = isRestartCode(syscallResult) && task.regs.orig_rax >= 0 ? syscallResult! : 0;

  for (;;) {
    if (task.exiting) return;
    if (shared.stopSignal !== 0) {
      const restart = pendingRestart;
      return waitWhileStopped(task).then(() => handleSignals(task, restart === 0 ? undefined : restart));
    }

    const info = dequeue(task);
    if (info === undefined) break;
    const signo = sigInfoSigno(info);
    const action = signals.actions[signo - 1];

    if (action.handler === SIG_IGN) continue;
    if (action.handler !== SIG_DFL) {
      // Like Linux, deliver every signal the new mask still lets through, each on a frame above
      // the previous one, so the handler of the last signal taken runs first.
      if (pendingRestart !== 0) resolveInterruptedCall(task, pendingRestart, action);
      pendingRestart = 0;
      runHandler(task, info, action);
      continue;
    }

    switch (defaultAction(signo)) {
      case DefaultAction.Ignore:
      case DefaultAction.Continue:
        continue;
      case DefaultAction.Stop:
        // The terminal's stop signals do not stop an orphaned job, which no shell would continue.
        if (signo !== Signal.SIGSTOP && task.kernel.isOrphanedProcessGroup(task.threadGroup.pgid)) continue;
        if (log.enabled) log('task %d: group stopped by %s', task.tid, signalName(signo));
        stopGroup(task.threadGroup, signo);
        continue;
      default:
        if (log.enabled) log('task %d: killed by %s', task.tid, signalName(signo));
        killGroupBySignal(task.threadGroup, signo);
        return;
    }
  }

  if (pendingRestart !== 0) resolveInterruptedCall(task, pendingRestart, undefined);
  pendingRestart = 0;
  if (signals.savedMask !== undefined) {
    const mask = signals.savedMask;
    signals.savedMask = undefined;
    setBlocked(task, mask);
  }
  updateAttention(task);
}

/**
 * Queues a synchronous signal raised by the task's own instruction (a fault, int3, a division by
 * zero). The instruction cannot run again unhandled, so, as in Linux, a blocked or ignored signal
 * reverts to its default action and is unblocked.
 */
export function forceSignal(task: Task, info: SigInfo): void {
  const signals = task.signals;
  const signo = sigInfoSigno(info);
  const bit = signalBit(signo);
  const action = signals.actions[signo - 1];
  if ((signals.blocked & bit) !== 0n || action.handler === SIG_IGN) {
    signals.actions[signo - 1] = defaultSignalAction();
    signals.blocked &= ~bit;
  }
  signals.pending.enqueue(info);
  updateAttention(task);
}
