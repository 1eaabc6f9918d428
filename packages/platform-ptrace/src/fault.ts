/**
 * Turns a signal stop into a fault where it is one. ptrace does not expose the page-fault error
 * code, so the access type is inferred:
 *   - Execute when the fault address is where the instruction starts, or the page it crosses into;
 *   - Write when SEGV_ACCERR hits a page this address space mapped readable but not writable;
 *   - Read otherwise.
 * Read is therefore a lower bound, as PlatformSupports.exactFaultAccess = false allows.
 */
import { Access, SwitchKind } from '@tsvisor/platform-api';
import type { RangeMap } from './range-map.js';

const SIGBUS = 7;
const SIGSEGV = 11;
const SEGV_MAPERR = 1;
const SEGV_ACCERR = 2;
const BUS_ADRERR = 2;
const PAGE_SIZE = 4096;
/** Maximum length of an x86-64 instruction, in bytes. */
const MAX_INSTRUCTION_LENGTH = 15;

export interface FaultDetails {
  address: number;
  access: number;
}

/** Reads the fields of struct siginfo (<asm-generic/siginfo.h>) a fault needs. */
function siginfoFields(info: Uint8Array): { signo: number; code: number; address: number } {
  const view = new DataView(info.buffer, info.byteOffset, info.byteLength);
  return {
    signo: view.getInt32(0, true),
    code: view.getInt32(8, true),
    address: view.getUint32(20, true) * 2 ** 32 + view.getUint32(16, true),
  };
}

/**
 * Returns SwitchKind.Fault and fills `out` when the siginfo describes a memory fault, otherwise
 * SwitchKind.Signal.
 */
export function classifySignal(info: Uint8Array, rip: number, mappings: RangeMap, out: FaultDetails): number {
  const { signo, code, address } = siginfoFields(info);
  const isFault = (signo === SIGSEGV && (code === SEGV_MAPERR || code === SEGV_ACCERR)) || (signo === SIGBUS && code === BUS_ADRERR);
  if (!isFault) return SwitchKind.Signal;

  out.address = address;
  const crossedIntoPage = address % PAGE_SIZE === 0 && address > rip && address < rip + MAX_INSTRUCTION_LENGTH;
  if (address === rip || crossedIntoPage) {
    out.access = Access.Execute;
    return SwitchKind.Fault;
  }

  const mapped = mappings.get(address);
  const readOnly = mapped !== undefined && (mapped & Access.Read) !== 0 && (mapped & Access.Write) === 0;
  out.access = signo === SIGSEGV && code === SEGV_ACCERR && readOnly ? Access.Write : Access.Read;
  return SwitchKind.Fault;
}
