/**
 * struct siginfo as the x86-64 kernel lays it out: 128 bytes, with si_signo, si_errno and si_code
 * first and a union from byte 16 whose meaning depends on the signal and si_code. The sentry keeps
 * every queued signal in this encoded form, so a signal sent with rt_sigqueueinfo reaches the
 * handler byte for byte.
 */
import { SI_KERNEL } from './constants.js';

export const SIGINFO_SIZE = 128;

/** Offsets of the fields in the union, by the kind of signal. */
export const SigInfoField = {
  signo: 0,
  errno: 4,
  code: 8,
  /** kill, sigqueue, SIGCHLD: the sender's or the child's pid and uid. */
  pid: 16,
  uid: 20,
  /** sigqueue: the value the sender passed. SIGCHLD: the exit status at the same offset (int). */
  value: 24,
  status: 24,
  utime: 32,
  stime: 40,
  /** SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP: the faulting address. */
  addr: 16,
} as const;

export type SigInfo = Buffer;

export function newSigInfo(signo: number, code: number): SigInfo {
  const info = Buffer.alloc(SIGINFO_SIZE);
  info.writeInt32LE(signo, SigInfoField.signo);
  info.writeInt32LE(code, SigInfoField.code);
  return info;
}

/** Builds the siginfo of a signal a process sent with kill, tkill or tgkill (si_code SI_USER or SI_TKILL). */
export function userSigInfo(signo: number, code: number, senderPid: number, senderUid: number): SigInfo {
  const info = newSigInfo(signo, code);
  info.writeInt32LE(senderPid, SigInfoField.pid);
  info.writeUInt32LE(senderUid >>> 0, SigInfoField.uid);
  return info;
}

/** Builds the siginfo of a signal the kernel raises itself, such as SIGALRM from a timer (si_code SI_KERNEL). */
export function kernelSigInfo(signo: number): SigInfo {
  return newSigInfo(signo, SI_KERNEL);
}

/** Builds the siginfo of a synchronous fault at `addr`. */
export function faultSigInfo(signo: number, code: number, addr: number): SigInfo {
  const info = newSigInfo(signo, code);
  info.writeBigUInt64LE(BigInt.asUintN(64, BigInt(addr)), SigInfoField.addr);
  return info;
}

export function sigInfoSigno(info: SigInfo): number {
  return info.readInt32LE(SigInfoField.signo);
}

export function sigInfoCode(info: SigInfo): number {
  return info.readInt32LE(SigInfoField.code);
}
