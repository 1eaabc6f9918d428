/**
 * Signal system calls: dispositions (rt_sigaction), masks (rt_sigprocmask, rt_sigpending), waiting
 * (pause, rt_sigsuspend, rt_sigtimedwait), sending (kill, tkill, tgkill, rt_sigqueueinfo,
 * rt_tgsigqueueinfo), the alternate stack (sigaltstack) and the return from a handler
 * (rt_sigreturn, restart_syscall). Queueing and delivery live in kernel/signals/.
 */
import { Errno, ERESTARTNOHAND, fail, SysError } from '../errno.js';
import {
  isValidSignal,
  lowestSignal,
  SI_TKILL,
  SI_USER,
  Signal,
  signalBit,
  UNBLOCKABLE,
} from '../kernel/signals/constants.js';
import { waitForSignal } from '../kernel/signals/block.js';
import { popFrame } from '../kernel/signals/frame.js';
import { isIgnored, killGroupBySignal, sendToGroup, sendToThread } from '../kernel/signals/send.js';
import { SIGINFO_SIZE, userSigInfo, type SigInfo } from '../kernel/signals/siginfo.js';
import {
  groupSignalsOf,
  setBlocked,
  SS_AUTODISARM,
  SS_DISABLE,
  SS_ONSTACK,
  updateAttention,
  type AltStack,
} from '../kernel/signals/state.js';
import type { Task } from '../kernel/task.js';
import type { ThreadGroup } from '../kernel/thread-group.js';
import { registerSyscall } from './table.js';

const SIG_BLOCK = 0;
const SIG_UNBLOCK = 1;
const SIG_SETMASK = 2;

/** The kernel's sigset_t is 64 bits on x86-64. */
const SIGSET_SIZE = 8;
const SIGACTION_SIZE = 32;
const STACK_T_SIZE = 24;
const MINSIGSTKSZ = 2048;

const NS_PER_SECOND = 1_000_000_000n;

function checkSignal(signo: number): void {
  if (!isValidSignal(signo)) fail(Errno.EINVAL);
}

function readSigset(task: Task, addr: number): bigint {
  return task.mm.copyIn(addr, SIGSET_SIZE).readBigUInt64LE(0);
}

function writeSigset(task: Task, addr: number, set: bigint): void {
  const bytes = Buffer.alloc(SIGSET_SIZE);
  bytes.writeBigUInt64LE(set);
  task.mm.copyOut(addr, bytes);
}

function rtSigaction(task: Task, signo: number, act: number, oldAct: number, sigsetSize: number): number {
  if (sigsetSize !== SIGSET_SIZE) fail(Errno.EINVAL);
  checkSignal(signo);
  if (act !== 0 && (signo === Signal.SIGKILL || signo === Signal.SIGSTOP)) fail(Errno.EINVAL);

  const signals = task.signals;
  const action = signals.actions[signo - 1];
  let replacement: typeof action | undefined;
  if (act !== 0) {
    const bytes = task.mm.copyIn(act, SIGACTION_SIZE);
    replacement = {
      handler: bytes.readBigUInt64LE(0),
      flags: bytes.readBigUInt64LE(8),
      restorer: bytes.readBigUInt64LE(16),
      mask: bytes.readBigUInt64LE(24) & ~UNBLOCKABLE,
    };
  }
  if (oldAct !== 0) {
    const bytes = Buffer.alloc(SIGACTION_SIZE);
    bytes.writeBigUInt64LE(action.handler, 0);
    bytes.writeBigUInt64LE(action.flags, 8);
    bytes.writeBigUInt64LE(action.restorer, 16);
    bytes.writeBigUInt64LE(action.mask, 24);
    task.mm.copyOut(oldAct, bytes);
  }
  if (replacement === undefined) return 0;

  signals.actions[signo - 1] = replacement;
  // POSIX: making a pending signal ignored discards it, in every thread of the process.
  if (isIgnored(signals, signo)) {
    const bit = signalBit(signo);
    groupSignalsOf(task.threadGroup).pending.discard(bit);
    for (const member of task.threadGroup.tasks) member.signals.pending.discard(bit);
  }
  return 0;
}

function rtSigprocmask(task: Task, how: number, set: number, oldSet: number, sigsetSize: number): number {
  how |= 0;
  if (sigsetSize !== SIGSET_SIZE) fail(Errno.EINVAL);
  let requested: bigint | undefined;
  if (set !== 0) {
    if (how !== SIG_BLOCK && how !== SIG_UNBLOCK && how !== SIG_SETMASK) fail(Errno.EINVAL);
    requested = readSigset(task, set);
  }
  const blocked = task.signals.blocked;
  if (oldSet !== 0) writeSigset(task, oldSet, blocked);
  if (requested !== undefined) {
    let next = requested;
    if (how === SIG_BLOCK) next = blocked | requested;
    if (how === SIG_UNBLOCK) next = blocked & ~requested;
    setBlocked(task, next);
  }
  return 0;
}

function rtSigpending(task: Task, set: number, sigsetSize: number): number {
  if (sigsetSize >>> 0 > SIGSET_SIZE) fail(Errno.EINVAL);
  const pending = task.signals.pending.set | groupSignalsOf(task.threadGroup).pending.set;
  const bytes = Buffer.alloc(SIGSET_SIZE);
  bytes.writeBigUInt64LE(pending & task.signals.blocked);
  task.mm.copyOut(set, bytes.subarray(0, sigsetSize >>> 0));
  return 0;
}

async function rtSigsuspend(task: Task, set: number, sigsetSize: number): Promise<number> {
  if (sigsetSize !== SIGSET_SIZE) fail(Errno.EINVAL);
  const mask = readSigset(task, set);
  const signals = task.signals;
  signals.savedMask = signals.blocked;
  setBlocked(task, mask);
  await waitForSignal(task);
  // Delivery runs the handler with the saved mask in its frame, or restores it and restarts the call.
  return -ERESTARTNOHAND;
}

async function pause(task: Task): Promise<number> {
  await waitForSignal(task);
  return -ERESTARTNOHAND;
}

/** Takes a pending signal of `set` for rt_sigtimedwait: the thread's own first, then the group's. */
function takeFrom(task: Task, set: bigint): SigInfo | undefined {
  const own = task.signals.pending.set & set;
  if (own !== 0n) return task.signals.pending.dequeue(lowestSignal(own));
  const shared = groupSignalsOf(task.threadGroup).pending;
  const group = shared.set & set;
  return group !== 0n ? shared.dequeue(lowestSignal(group)) : undefined;
}

function readTimeout(task: Task, addr: number): bigint {
  const bytes = task.mm.copyIn(addr, 16);
  const seconds = bytes.readBigInt64LE(0);
  const nanoseconds = bytes.readBigInt64LE(8);
  if (seconds < 0n || nanoseconds < 0n || nanoseconds >= NS_PER_SECOND) fail(Errno.EINVAL);
  return seconds * NS_PER_SECOND + nanoseconds;
}

/**
 * Waits for a signal of `set` and takes it without running its handler. While the call waits,
 * the signals of `set` count as accepted (TaskSignals.waitSet), so they wake the task even though
 * they are normally blocked, and are not discarded as ignored.
 */
async function rtSigtimedwait(task: Task, setAddr: number, infoAddr: number, timeoutAddr: number, sigsetSize: number): Promise<number> {
  if (sigsetSize !== SIGSET_SIZE) fail(Errno.EINVAL);
  const set = readSigset(task, setAddr) & ~UNBLOCKABLE;
  const timeout = timeoutAddr === 0 ? undefined : readTimeout(task, timeoutAddr);
  const signals = task.signals;

  let info = takeFrom(task, set);
  if (info === undefined && timeout !== 0n) {
    signals.waitSet = set;
    try {
      await task.block<void>((resolve) => {
        if (timeout === undefined) return () => {};
        const timer = setTimeout(resolve, Math.max(1, Math.ceil(Number(timeout) / 1e6)));
        return () => clearTimeout(timer);
      });
    } catch (error) {
      if (!(error instanceof SysError)) throw error;
    } finally {
      signals.waitSet = 0n;
      updateAttention(task);
    }
    info = takeFrom(task, set);
    if (info === undefined && task.attention) return -Errno.EINTR;
  }
  if (info === undefined) return -Errno.EAGAIN;

  updateAttention(task);
  if (infoAddr !== 0) task.mm.copyOut(infoAddr, info);
  return info.readInt32LE(0);
}

/** Finds the thread groups kill(pid) addresses; ESRCH when there are none. */
function killTargets(task: Task, pid: number): ThreadGroup[] {
  const kernel = task.kernel;
  let targets: ThreadGroup[];
  if (pid > 0) {
    const group = kernel.threadGroups.get(pid);
    targets = group === undefined ? [] : [group];
  } else if (pid === 0) {
    targets = kernel.processGroup(task.threadGroup.pgid);
  } else if (pid === -1) {
    // Every process but init and the caller, as Linux does for kill(-1, sig).
    targets = [...kernel.threadGroups.values()].filter((group) => !group.zombie && group !== kernel.init && group !== task.threadGroup);
  } else {
    targets = kernel.processGroup(-pid);
  }
  if (targets.length === 0) fail(Errno.ESRCH);
  return targets;
}

function kill(task: Task, pid: number, signo: number): number {
  pid |= 0;
  if (signo !== 0) checkSignal(signo);
  if (pid === -2147483648) fail(Errno.ESRCH);
  const targets = killTargets(task, pid);
  if (signo === 0) return 0;
  for (const group of targets) {
    sendToGroup(group, userSigInfo(signo, SI_USER, task.tgid, task.creds.uid), task);
  }
  return 0;
}

function findThread(task: Task, tgid: number, tid: number): Task {
  if (tid <= 0) fail(Errno.EINVAL);
  const target = task.kernel.tasks.get(tid);
  if (target === undefined || target.exiting || (tgid > 0 && target.tgid !== tgid)) fail(Errno.ESRCH);
  return target;
}

function signalThread(task: Task, tgid: number, tid: number, signo: number): number {
  if (signo !== 0) checkSignal(signo);
  const target = findThread(task, tgid, tid);
  if (signo !== 0) sendToThread(target, userSigInfo(signo, SI_TKILL, task.tgid, task.creds.uid), task);
  return 0;
}

/** Reads the siginfo of rt_sigqueueinfo; a process may not forge kernel or kill() codes for others. */
function readQueuedInfo(task: Task, signo: number, addr: number, targetTgid: number): SigInfo {
  const info = Buffer.from(task.mm.copyIn(addr, SIGINFO_SIZE));
  const code = info.readInt32LE(8);
  if ((code >= 0 || code === SI_TKILL) && targetTgid !== task.tgid) fail(Errno.EPERM);
  info.writeInt32LE(signo, 0);
  return info;
}

function rtSigqueueinfo(task: Task, pid: number, signo: number, addr: number): number {
  pid |= 0;
  checkSignal(signo);
  const info = readQueuedInfo(task, signo, addr, pid);
  const group = task.kernel.threadGroups.get(pid);
  if (group === undefined || pid <= 0) fail(Errno.ESRCH);
  sendToGroup(group, info, task);
  return 0;
}

function rtTgsigqueueinfo(task: Task, tgid: number, tid: number, signo: number, addr: number): number {
  tgid |= 0;
  tid |= 0;
  if (tgid <= 0) fail(Errno.EINVAL);
  checkSignal(signo);
  const target = findThread(task, tgid, tid);
  sendToThread(target, readQueuedInfo(task, signo, addr, tgid), task);
  return 0;
}

function writeAltStack(task: Task, addr: number, stack: AltStack): void {
  const bytes = Buffer.alloc(STACK_T_SIZE);
  bytes.writeBigUInt64LE(stack.sp, 0);
  let flags = stack.flags & SS_AUTODISARM;
  if (task.signals.onAltStack(task.regs.rsp)) flags |= SS_ONSTACK;
  else if ((stack.flags & SS_DISABLE) !== 0) flags |= SS_DISABLE;
  bytes.writeInt32LE(flags, 8);
  bytes.writeBigUInt64LE(stack.size, 16);
  task.mm.copyOut(addr, bytes);
}

/** Validates a new alternate stack as sigaltstack does; returns it, or throws EINVAL, ENOMEM or EPERM. */
export function checkAltStack(task: Task, requested: AltStack): AltStack {
  if (task.signals.onAltStack(task.regs.rsp)) fail(Errno.EPERM);
  const mode = requested.flags & ~SS_AUTODISARM;
  if (mode !== 0 && mode !== SS_ONSTACK && mode !== SS_DISABLE) fail(Errno.EINVAL);
  if (mode === SS_DISABLE) return { sp: 0n, flags: SS_DISABLE, size: 0n };
  if (requested.size < BigInt(MINSIGSTKSZ)) fail(Errno.ENOMEM);
  return { sp: requested.sp, flags: requested.flags & SS_AUTODISARM, size: requested.size };
}

function sigaltstack(task: Task, stack: number, oldStack: number): number {
  const current = task.signals.altStack;
  let replacement: AltStack | undefined;
  if (stack !== 0) {
    const bytes = task.mm.copyIn(stack, STACK_T_SIZE);
    replacement = checkAltStack(task, { sp: bytes.readBigUInt64LE(0), flags: bytes.readInt32LE(8), size: bytes.readBigUInt64LE(16) });
  }
  if (oldStack !== 0) writeAltStack(task, oldStack, current);
  if (replacement !== undefined) task.signals.altStack = replacement;
  return 0;
}

function rtSigreturn(task: Task): number {
  let restored: ReturnType<typeof popFrame>;
  try {
    restored = popFrame(task);
  } catch (error) {
    if (!(error instanceof SysError)) throw error;
    // A frame that cannot be read leaves nothing to return to: Linux raises SIGSEGV.
    killGroupBySignal(task.threadGroup, Signal.SIGSEGV);
    return 0;
  }
  setBlocked(task, restored.mask);
  // Linux restores the alternate stack as sigaltstack would, and ignores a value it rejects.
  try {
    task.signals.altStack = checkAltStack(task, restored.stack);
  } catch (error) {
    if (!(error instanceof SysError)) throw error;
  }
  return task.regs.rax;
}

function restartSyscall(task: Task): number | Promise<number> {
  const restart = task.signals.restartBlock;
  task.signals.restartBlock = undefined;
  return restart === undefined ? -Errno.EINTR : restart(task);
}

registerSyscall('rt_sigaction', rtSigaction, { args: ['signal', 'ptr', 'ptr', 'int'] });
registerSyscall('rt_sigprocmask', rtSigprocmask, { args: ['int', 'ptr', 'ptr', 'int'] });
registerSyscall('rt_sigpending', rtSigpending, { args: ['ptr', 'int'] });
registerSyscall('rt_sigsuspend', rtSigsuspend, { args: ['ptr', 'int'] });
registerSyscall('pause', pause);
registerSyscall('rt_sigtimedwait', rtSigtimedwait, { args: ['ptr', 'ptr', 'ptr', 'int'] });
registerSyscall('sigaltstack', sigaltstack, { args: ['ptr', 'ptr'] });
registerSyscall('rt_sigreturn', rtSigreturn);
registerSyscall('restart_syscall', restartSyscall);
registerSyscall('kill', kill, { args: ['int', 'signal'] });
registerSyscall('tkill', (task, tid, signo) => signalThread(task, -1, tid | 0, signo), { args: ['int', 'signal'] });
registerSyscall('tgkill', (task, tgid, tid, signo) => {
  if ((tgid | 0) <= 0) fail(Errno.EINVAL);
  return signalThread(task, tgid | 0, tid | 0, signo);
}, { args: ['int', 'int', 'signal'] });
registerSyscall('rt_sigqueueinfo', rtSigqueueinfo, { args: ['int', 'signal', 'ptr'] });
registerSyscall('rt_tgsigqueueinfo', rtTgsigqueueinfo, { args: ['int', 'int', 'signal', 'ptr'] });
