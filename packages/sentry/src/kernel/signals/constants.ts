/**
 * Signal numbers, sigaction flags, siginfo codes and default actions of Linux on x86-64, from
 * <asm/signal.h> and <asm-generic/siginfo.h>. Signal sets are 64-bit masks in which signal N is
 * bit N - 1, as the kernel's sigset_t stores them.
 */

export const NSIG = 64;

export const Signal = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
  SIGRTMIN: 32,
} as const;

export const SIG_DFL = 0n;
export const SIG_IGN = 1n;

/** sa_flags bits. */
export const SA_NOCLDSTOP = 0x1n;
export const SA_NOCLDWAIT = 0x2n;
export const SA_SIGINFO = 0x4n;
export const SA_RESTORER = 0x04000000n;
export const SA_ONSTACK = 0x08000000n;
export const SA_RESTART = 0x10000000n;
export const SA_NODEFER = 0x40000000n;
export const SA_RESETHAND = 0x80000000n;

/** si_code values for signals sent by processes and by the kernel. */
export const SI_USER = 0;
export const SI_KERNEL = 0x80;
export const SI_QUEUE = -1;
export const SI_TIMER = -2;
export const SI_TKILL = -6;

export const SEGV_MAPERR = 1;
export const SEGV_ACCERR = 2;

/** Action a signal takes when its disposition is SIG_DFL. */
export const DefaultAction = {
  Terminate: 0,
  CoreDump: 1,
  Ignore: 2,
  Stop: 3,
  Continue: 4,
} as const;
export type DefaultAction = (typeof DefaultAction)[keyof typeof DefaultAction];

const CORE_DUMP_SIGNALS = [3, 4, 5, 6, 7, 8, 11, 24, 25, 31];
const IGNORED_SIGNALS = [17, 23, 28];
const STOP_SIGNALS = [19, 20, 21, 22];

/** Returns the default action of `signo`; real-time signals terminate. */
export function defaultAction(signo: number): DefaultAction {
  if (CORE_DUMP_SIGNALS.includes(signo)) return DefaultAction.CoreDump;
  if (IGNORED_SIGNALS.includes(signo)) return DefaultAction.Ignore;
  if (STOP_SIGNALS.includes(signo)) return DefaultAction.Stop;
  if (signo === Signal.SIGCONT) return DefaultAction.Continue;
  return DefaultAction.Terminate;
}

export function signalBit(signo: number): bigint {
  return 1n << BigInt(signo - 1);
}

/** SIGKILL and SIGSTOP: no handler, no mask and no sigtimedwait can catch them. */
export const UNBLOCKABLE = signalBit(Signal.SIGKILL) | signalBit(Signal.SIGSTOP);

/** Signals that stop a thread group, and SIGCONT, which discards them (and they discard it). */
export const STOP_MASK = signalBit(19) | signalBit(20) | signalBit(21) | signalBit(22);

/** Synchronous signals, which Linux delivers before any other pending signal. */
export const SYNCHRONOUS_MASK = signalBit(Signal.SIGSEGV) | signalBit(Signal.SIGBUS) | signalBit(Signal.SIGILL)
  | signalBit(Signal.SIGTRAP) | signalBit(Signal.SIGFPE) | signalBit(Signal.SIGSYS);

export function isValidSignal(signo: number): boolean {
  return signo >= 1 && signo <= NSIG;
}

export function isRealtime(signo: number): boolean {
  return signo >= Signal.SIGRTMIN;
}

/** Returns the lowest signal in `set`, synchronous signals first, or 0 when the set is empty. */
export function lowestSignal(set: bigint): number {
  if (set === 0n) return 0;
  const synchronous = set & SYNCHRONOUS_MASK;
  let bits = synchronous !== 0n ? synchronous : set;
  let signo = 1;
  while ((bits & 1n) === 0n) {
    bits >>= 1n;
    signo++;
  }
  return signo;
}
