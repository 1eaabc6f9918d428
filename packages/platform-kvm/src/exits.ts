/**
 * What an exit vector means to the sentry: x86 exceptions from ring 3 become faults or signals the
 * way Linux's own exception handlers report them, so the sentry sees the same siginfo on every
 * platform.
 */
import { Access, SwitchKind } from '@tsvisor/platform-api';
import { EXIT_COMPAT_SYSCALL, EXIT_INTERRUPTED, EXIT_SYSCALL } from './native.js';

const SIGTRAP = 5;
const SIGBUS = 7;
const SIGFPE = 8;
const SIGSEGV = 11;
const SIGILL = 4;
const SIGSYS = 31;

const SI_KERNEL = 0x80;
const TRAP_TRACE = 2;
const ILL_ILLOPN = 2;
const FPE_INTDIV = 1;
const FPE_FLTINV = 7;
const BUS_ADRALN = 1;
const SEGV_MAPERR = 1;
const SEGV_ACCERR = 2;
const SYS_SECCOMP = 1;
const AUDIT_ARCH_I386 = 0x40000003;

/** Page-fault error code bits. */
const PF_PRESENT = 1;
const PF_WRITE = 2;
const PF_FETCH = 16;

/** The signal number, si_code and whether si_addr is the instruction pointer, per exception vector. */
const EXCEPTION_SIGNALS: Record<number, [number, number, boolean]> = {
  0: [SIGFPE, FPE_INTDIV, true], // #DE divide error
  1: [SIGTRAP, TRAP_TRACE, false], // #DB single step
  3: [SIGTRAP, SI_KERNEL, false], // #BP int3
  4: [SIGSEGV, SI_KERNEL, false], // #OF into
  5: [SIGSEGV, SI_KERNEL, false], // #BR bound
  6: [SIGILL, ILL_ILLOPN, true], // #UD invalid opcode
  7: [SIGSEGV, SI_KERNEL, false], // #NM, not expected: the guest never sets CR0.TS or CR0.EM
  13: [SIGSEGV, SI_KERNEL, false], // #GP
  12: [SIGBUS, SI_KERNEL, false], // #SS
  16: [SIGFPE, FPE_FLTINV, true], // #MF x87 error
  17: [SIGBUS, BUS_ADRALN, false], // #AC alignment check
  19: [SIGFPE, FPE_FLTINV, true], // #XM SIMD error
};

export interface DecodedExit {
  kind: SwitchKind;
  faultAddress: number;
  faultAccess: number;
}

/**
 * Turns an exit vector into a SwitchKind, filling `signalInfo` (struct siginfo) for signals and page
 * faults. `errorCode` and `cr2` come from the exception; `rip` and `rax` are the application's.
 */
export function decodeExit(
  vector: number,
  errorCode: number,
  cr2: number,
  rip: number,
  rax: number,
  signalInfo: Uint8Array,
  out: DecodedExit,
): void {
  if (vector === EXIT_SYSCALL) {
    out.kind = SwitchKind.Syscall;
    return;
  }
  if (vector === EXIT_INTERRUPTED) {
    out.kind = SwitchKind.Interrupted;
    return;
  }

  const view = new DataView(signalInfo.buffer, signalInfo.byteOffset, signalInfo.byteLength);
  signalInfo.fill(0);
  if (vector === EXIT_COMPAT_SYSCALL) {
    // The siginfo a seccomp filter that traps every non-x86-64 entry raises, as on systrap and
    // ptrace, so the sentry never runs the x86-64 call that shares the 32-bit number.
    out.kind = SwitchKind.Signal;
    writeSiginfo(view, SIGSYS, SYS_SECCOMP, rip);
    view.setInt32(24, rax | 0, true);
    view.setUint32(28, AUDIT_ARCH_I386, true);
    return;
  }
  if (vector === 14) {
    let access: number = Access.Read;
    if (errorCode & PF_WRITE) access = Access.Write;
    else if (errorCode & PF_FETCH) access = Access.Execute;
    out.kind = SwitchKind.Fault;
    out.faultAddress = cr2;
    out.faultAccess = access;
    writeSiginfo(view, SIGSEGV, errorCode & PF_PRESENT ? SEGV_ACCERR : SEGV_MAPERR, cr2);
    return;
  }

  const [signo, code, addressIsRip] = EXCEPTION_SIGNALS[vector] ?? [SIGSEGV, SI_KERNEL, false];
  out.kind = SwitchKind.Signal;
  writeSiginfo(view, signo, code, addressIsRip ? rip : 0);
}

function writeSiginfo(view: DataView, signo: number, code: number, address: number): void {
  view.setInt32(0, signo, true);
  view.setInt32(8, code, true);
  view.setBigInt64(16, BigInt(address), true);
}
