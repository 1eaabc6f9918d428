/**
 * The signal state of tasks and thread groups:
 *
 * - TaskSignals: the state of one thread. It has the dispositions, an array that threads created
 *   with CLONE_SIGHAND share. It also has the thread's private pending set, its blocked mask, the
 *   mask rt_sigsuspend will restore, its alternate stack, and the details of its last fault.
 * - GroupSignals: what a thread group shares: the process-directed pending set, the group stop and
 *   the cleanup of its interval timers. It is found from the ThreadGroup, so the task code needs
 *   no field for it.
 *
 * Task.attention tells the task loop to run signal handling before its next switch. It is a plain
 * boolean so that the system call fast path does no BigInt arithmetic; every change to a pending
 * set, a mask or the group stop recomputes it with updateAttention().
 */
import type { Task } from '../task.js';
import type { ThreadGroup } from '../thread-group.js';
import { NSIG, SIG_DFL, SIG_IGN, UNBLOCKABLE } from './constants.js';
import { PendingSignals } from './pending.js';

/** struct kernel_sigaction, as rt_sigaction reads and writes it. */
export interface SignalAction {
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}

export const SS_ONSTACK = 1;
export const SS_DISABLE = 2;
/** Disables the alternate stack while a handler runs on it; sigreturn restores it. */
export const SS_AUTODISARM = 1 << 31;

/** stack_t of sigaltstack: base, flags (SS_DISABLE, SS_AUTODISARM or 0) and size. */
export interface AltStack {
  sp: bigint;
  flags: number;
  size: bigint;
}

export function defaultSignalAction(): SignalAction {
  return { handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n };
}

export class GroupSignals {
  readonly pending = new PendingSignals();
  /** The signal that stopped the group (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU), or 0 while it runs. */
  stopSignal = 0;
  private readonly resumeWaiters = new Set<() => void>();
  private readonly releaseHooks = new Set<() => void>();

  /** Registers a callback for the end of the stop; returns a function that unregisters it. */
  onResume(waiter: () => void): () => void {
    this.resumeWaiters.add(waiter);
    return () => this.resumeWaiters.delete(waiter);
  }

  /** Runs the callbacks waiting for the end of the stop and removes them. */
  resumeWaitersNow(): void {
    const waiters = [...this.resumeWaiters];
    this.resumeWaiters.clear();
    for (const waiter of waiters) waiter();
  }

  /** Registers cleanup (cancelling a host timer) to run when the thread group exits. */
  addReleaseHook(hook: () => void): () => void {
    this.releaseHooks.add(hook);
    return () => this.releaseHooks.delete(hook);
  }

  /** Cancels the group's host timers and ends waits for the end of a stop. Idempotent. */
  release(): void {
    const hooks = [...this.releaseHooks];
    this.releaseHooks.clear();
    for (const hook of hooks) hook();
    this.resumeWaitersNow();
  }
}

const groups = new WeakMap<ThreadGroup, GroupSignals>();

/** Returns the signal state shared by the threads of `group`. */
export function groupSignalsOf(group: ThreadGroup): GroupSignals {
  let signals = groups.get(group);
  if (signals === undefined) {
    signals = new GroupSignals();
    groups.set(group, signals);
  }
  return signals;
}

export class TaskSignals {
  readonly pending = new PendingSignals();
  blocked = 0n;
  /** Signals rt_sigtimedwait is waiting for: they wake the task and are kept even when blocked or ignored. */
  waitSet = 0n;
  /** The mask to restore after the handler runs, or when no handler runs, set by rt_sigsuspend. */
  savedMask: bigint | undefined;
  altStack: AltStack = { sp: 0n, flags: SS_DISABLE, size: 0n };
  /** Continuation that restart_syscall runs after a call returned ERESTART_RESTARTBLOCK, such as nanosleep. */
  restartBlock: ((task: Task) => number | Promise<number>) | undefined;

  /** Hardware details of the last fault, for the sigcontext of the signal frame. */
  faultTrapNumber = 0;
  faultErrorCode = 0;
  faultAddress = 0;

  constructor(
    /** Dispositions, indexed by signal number - 1. Threads created with CLONE_SIGHAND share the array. */
    public actions: SignalAction[] = Array.from({ length: NSIG }, defaultSignalAction),
  ) {}

  /** Tests whether `sp` lies on the alternate signal stack. */
  onAltStack(sp: number): boolean {
    const stack = this.altStack;
    if ((stack.flags & SS_DISABLE) !== 0) return false;
    const base = Number(stack.sp);
    return sp > base && sp - base <= Number(stack.size);
  }
}

/** Signals pending for `task`, for it or its group, that its mask lets through. */
export function deliverableSignals(task: Task): bigint {
  const signals = task.signals;
  return (signals.pending.set | groupSignalsOf(task.threadGroup).pending.set) & ~signals.blocked;
}

/** Sets Task.attention from the task's signal state. */
export function updateAttention(task: Task): void {
  const signals = task.signals;
  const shared = groupSignalsOf(task.threadGroup);
  const pending = signals.pending.set | shared.pending.set;
  task.attention = shared.stopSignal !== 0 || (pending & (~signals.blocked | signals.waitSet)) !== 0n;
}

/** Tests whether `task` takes `signo` now, because it does not block it or rt_sigtimedwait waits for it. */
export function accepts(task: Task, signo: number): boolean {
  const bit = 1n << BigInt(signo - 1);
  return (task.signals.blocked & bit) === 0n || (task.signals.waitSet & bit) !== 0n;
}

/** Sets the blocked mask (SIGKILL and SIGSTOP cannot be blocked) and updates Task.attention. */
export function setBlocked(task: Task, mask: bigint): void {
  task.signals.blocked = mask & ~UNBLOCKABLE;
  updateAttention(task);
}

/** Gives a task that execs the signal state execve leaves: caught signals reset, no alternate stack. */
export function resetSignalsForExec(task: Task): void {
  const signals = task.signals;
  signals.actions = signals.actions.map((action) => (action.handler === SIG_IGN ? { ...action, flags: 0n } : defaultSignalAction()));
  signals.altStack = { sp: 0n, flags: SS_DISABLE, size: 0n };
  signals.savedMask = undefined;
  signals.restartBlock = undefined;
}
