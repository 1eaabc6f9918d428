/**
 * Signal system calls. rt_sigaction, rt_sigprocmask and sigaltstack record the program's requests,
 * and kill, tkill and tgkill aimed at the program itself apply the signal's default action.
 * NOTE: handlers are never run yet (see kernel/signals.ts), but abort() and raise() still end the
 * program as Linux would.
 */
import { Errno, fail } from '../errno.js';
import { NSIG, SIGKILL, SIGSTOP } from '../kernel/signal-state.js';
import { deliverUnblocked, signalSelf } from '../kernel/signals.js';
import type { Task } from '../kernel/task.js';
import { registerSyscall, registerUnimplemented } from './table.js';

const SIG_BLOCK = 0;
const SIG_UNBLOCK = 1;
const SIG_SETMASK = 2;

/** The kernel's sigset_t is 64 bits on x86-64. */
const SIGSET_SIZE = 8;
const SIGACTION_SIZE = 32;
const STACK_T_SIZE = 24;

const SS_ONSTACK = 1;
const SS_DISABLE = 2;
const MINSIGSTKSZ = 2048;

const UNBLOCKABLE = (1n << BigInt(SIGKILL - 1)) | (1n << BigInt(SIGSTOP - 1));

function checkSignal(signo: number): void {
  if (signo < 1 || signo > NSIG) fail(Errno.EINVAL);
}

function rtSigaction(task: Task, signo: number, act: number, oldAct: number, sigsetSize: number): number {
  if (sigsetSize !== SIGSET_SIZE) fail(Errno.EINVAL);
  checkSignal(signo);
  if (act !== 0 && (signo === SIGKILL || signo === SIGSTOP)) fail(Errno.EINVAL);

  const action = task.signals.actions[signo - 1];
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
  if (replacement !== undefined) task.signals.actions[signo - 1] = replacement;
  return 0;
}

function rtSigprocmask(task: Task, how: number, set: number, oldSet: number, sigsetSize: number): number {
  how |= 0;
  if (sigsetSize !== SIGSET_SIZE) fail(Errno.EINVAL);
  let requested: bigint | undefined;
  if (set !== 0) {
    if (how !== SIG_BLOCK && how !== SIG_UNBLOCK && how !== SIG_SETMASK) fail(Errno.EINVAL);
    requested = task.mm.copyIn(set, SIGSET_SIZE).readBigUInt64LE(0);
  }
  if (oldSet !== 0) {
    const bytes = Buffer.alloc(SIGSET_SIZE);
    bytes.writeBigUInt64LE(task.signals.blocked);
    task.mm.copyOut(oldSet, bytes);
  }
  if (requested !== undefined) {
    const blocked = task.signals.blocked;
    let next = requested;
    if (how === SIG_BLOCK) next = blocked | requested;
    if (how === SIG_UNBLOCK) next = blocked & ~requested;
    task.signals.blocked = next & ~UNBLOCKABLE;
    deliverUnblocked(task);
  }
  return 0;
}

function sigaltstack(task: Task, stack: number, oldStack: number): number {
  const current = task.signals.altStack;
  let replacement: typeof current | undefined;
  if (stack !== 0) {
    const bytes = task.mm.copyIn(stack, STACK_T_SIZE);
    const flags = bytes.readInt32LE(8);
    if ((flags & ~SS_DISABLE) !== 0) fail(Errno.EINVAL);
    const size = bytes.readBigUInt64LE(16);
    if ((flags & SS_DISABLE) === 0 && size < BigInt(MINSIGSTKSZ)) fail(Errno.ENOMEM);
    replacement = { sp: bytes.readBigUInt64LE(0), flags, size };
  }
  if (oldStack !== 0) {
    const bytes = Buffer.alloc(STACK_T_SIZE);
    bytes.writeBigUInt64LE(current.sp, 0);
    // Signals never run on the alternate stack yet, so SS_ONSTACK is never reported.
    bytes.writeInt32LE(current.flags & ~SS_ONSTACK, 8);
    bytes.writeBigUInt64LE(current.size, 16);
    task.mm.copyOut(oldStack, bytes);
  }
  if (replacement !== undefined) task.signals.altStack = replacement;
  return 0;
}

registerSyscall('rt_sigaction', rtSigaction, {
  args: ['signal', 'ptr', 'ptr', 'int'],
  support: 'partial',
  note: 'dispositions are recorded but handlers are never run',
});
registerSyscall('rt_sigprocmask', rtSigprocmask, { args: ['int', 'ptr', 'ptr', 'int'] });
registerSyscall('sigaltstack', sigaltstack, { args: ['ptr', 'ptr'] });
registerUnimplemented('rt_sigreturn', 'signal handlers are never run, so there is no signal frame to return from');

registerSyscall('kill', (task, pid, signo) => {
  pid |= 0;
  if (pid !== task.tgid && pid !== 0 && pid !== -1) fail(Errno.ESRCH);
  return signalSelf(task, signo);
}, { args: ['int', 'signal'], support: 'partial', note: 'only the calling process can be signalled' });
registerSyscall('tkill', (task, tid, signo) => {
  tid |= 0;
  if (tid !== task.tid) fail(tid <= 0 ? Errno.EINVAL : Errno.ESRCH);
  return signalSelf(task, signo);
}, { args: ['int', 'signal'], support: 'partial', note: 'only the calling thread can be signalled' });
registerSyscall('tgkill', (task, tgid, tid, signo) => {
  tgid |= 0;
  tid |= 0;
  if (tgid <= 0 || tid <= 0) fail(Errno.EINVAL);
  if (tgid !== task.tgid || tid !== task.tid) fail(Errno.ESRCH);
  return signalSelf(task, signo);
}, { args: ['int', 'int', 'signal'], support: 'partial', note: 'only the calling thread can be signalled' });
