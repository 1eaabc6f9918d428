/**
 * Turns what stopped the application into synchronous signals. A memory fault the memory manager
 * could not resolve becomes SIGSEGV with si_addr and SEGV_MAPERR or SEGV_ACCERR. An exception the
 * platform reported (SIGILL, SIGFPE, SIGTRAP, SIGBUS) keeps the host's si_code and si_addr,
 * because they describe the application's own instruction.
 */
import { Access } from '@tsvisor/platform-api';
import type { Task } from '../task.js';
import { SEGV_ACCERR, SEGV_MAPERR, Signal } from './constants.js';
import { forceSignal } from './deliver.js';
import { faultSigInfo, SIGINFO_SIZE } from './siginfo.js';

/** x86 exception vectors, reported in sigcontext.trapno. */
const TRAP_DIVIDE_ERROR = 0;
const TRAP_BREAKPOINT = 3;
const TRAP_INVALID_OPCODE = 6;
const TRAP_GENERAL_PROTECTION = 13;
const TRAP_PAGE_FAULT = 14;

/** Page fault error code bits, reported in sigcontext.err. */
const PF_PROTECTION = 1;
const PF_WRITE = 2;
const PF_USER = 4;
const PF_INSTRUCTION = 16;

/** Raises SIGSEGV for an access at `addr` that no VMA allows. */
export function raiseSegmentationFault(task: Task, addr: number, access: number): void {
  const mapped = task.mm.isFullyMapped(addr - (addr % 4096), addr - (addr % 4096) + 1);
  const signals = task.signals;
  signals.faultTrapNumber = TRAP_PAGE_FAULT;
  signals.faultErrorCode = PF_USER | (mapped ? PF_PROTECTION : 0) | ((access & Access.Write) !== 0 ? PF_WRITE : 0)
    | ((access & Access.Execute) !== 0 ? PF_INSTRUCTION : 0);
  signals.faultAddress = addr;
  forceSignal(task, faultSigInfo(Signal.SIGSEGV, mapped ? SEGV_ACCERR : SEGV_MAPERR, addr));
}

function trapNumber(signo: number): number {
  switch (signo) {
    case Signal.SIGFPE:
      return TRAP_DIVIDE_ERROR;
    case Signal.SIGTRAP:
      return TRAP_BREAKPOINT;
    case Signal.SIGILL:
      return TRAP_INVALID_OPCODE;
    default:
      return TRAP_GENERAL_PROTECTION;
  }
}

/** Raises the signal described by the host siginfo `hostInfo` that the platform reported. */
export function raisePlatformSignal(task: Task, hostInfo: Uint8Array): void {
  const info = Buffer.alloc(SIGINFO_SIZE);
  info.set(hostInfo.subarray(0, SIGINFO_SIZE));
  const signo = info.readInt32LE(0);
  const signals = task.signals;
  signals.faultTrapNumber = trapNumber(signo);
  signals.faultErrorCode = 0;
  signals.faultAddress = 0;
  // Only the fields of a fault are meaningful: the host's sender pid would name a stub process.
  const code = info.readInt32LE(8);
  const addr = Number(info.readBigUInt64LE(16));
  forceSignal(task, faultSigInfo(signo, code, addr));
}
