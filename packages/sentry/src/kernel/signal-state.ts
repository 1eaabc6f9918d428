/**
 * Signal dispositions and the blocked mask of a task. rt_sigaction and rt_sigprocmask record the
 * program's requests so that libc start-up and programs that install handlers work.
 * NOTE: signals are not delivered to handlers yet; a signal the platform reports ends the thread
 * group as if its disposition were the default one.
 */

export const NSIG = 64;

/** struct kernel_sigaction, as rt_sigaction reads and writes it. */
export interface SignalAction {
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}

/** Signals whose disposition cannot be changed and that cannot be blocked. */
export const SIGKILL = 9;
export const SIGSTOP = 19;
export const SIGSEGV = 11;

export class SignalState {
  /** Index signal - 1. */
  readonly actions: SignalAction[] = Array.from({ length: NSIG }, () => ({ handler: 0n, flags: 0n, restorer: 0n, mask: 0n }));
  blocked = 0n;
  /** Signals sent while blocked, bit signo - 1. */
  pending = 0n;
  /** sigaltstack: ss_sp, ss_flags, ss_size. */
  altStack = { sp: 0n, flags: 2, size: 0n };
}
