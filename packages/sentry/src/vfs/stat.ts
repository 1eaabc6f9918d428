/**
 * Encoding of FileStat into the structures the application reads: struct stat of x86-64
 * (<asm/stat.h>, 144 bytes) and struct statx (<linux/stat.h>, 256 bytes).
 */
import type { FileStat } from './file.js';

export const STAT_SIZE = 144;
export const STATX_SIZE = 256;

/** statx fields always filled in (STATX_BASIC_STATS); birth time and the rest are not reported. */
export const STATX_BASIC_STATS = 0x7ff;

const NS_PER_S = 1_000_000_000n;

/** Splits a time in nanoseconds since the epoch into whole seconds and the nanoseconds after them. */
function splitTimestamp(ns: bigint): { seconds: bigint; nanoseconds: bigint } {
  // Floor division keeps nanoseconds in [0, 1e9) for times before 1970, as the kernel does.
  let seconds = ns / NS_PER_S;
  let nanoseconds = ns % NS_PER_S;
  if (nanoseconds < 0n) {
    seconds -= 1n;
    nanoseconds += NS_PER_S;
  }
  return { seconds, nanoseconds };
}

function writeTimespec(view: DataView, offset: number, ns: bigint): void {
  const { seconds, nanoseconds } = splitTimestamp(ns);
  view.setBigInt64(offset, seconds, true);
  view.setBigInt64(offset + 8, nanoseconds, true);
}

/** Returns struct stat for `st`. */
export function encodeStat(st: FileStat): Uint8Array {
  const bytes = new Uint8Array(STAT_SIZE);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, st.dev, true);
  view.setBigUint64(8, st.ino, true);
  view.setBigUint64(16, BigInt(st.nlink), true);
  view.setUint32(24, st.mode, true);
  view.setUint32(28, st.uid, true);
  view.setUint32(32, st.gid, true);
  view.setBigUint64(40, st.rdev, true);
  view.setBigInt64(48, BigInt(st.size), true);
  view.setBigInt64(56, BigInt(st.blksize), true);
  view.setBigInt64(64, BigInt(st.blocks), true);
  writeTimespec(view, 72, st.atimeNs);
  writeTimespec(view, 88, st.mtimeNs);
  writeTimespec(view, 104, st.ctimeNs);
  return bytes;
}

/** Splits a device number encoded as the kernel's new_encode_dev does into major and minor. */
export function deviceMajor(dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
}

export function deviceMinor(dev: bigint): number {
  return Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn & 0xffffffffn));
}

function writeStatxTimestamp(view: DataView, offset: number, ns: bigint): void {
  const { seconds, nanoseconds } = splitTimestamp(ns);
  view.setBigInt64(offset, seconds, true);
  view.setUint32(offset + 8, Number(nanoseconds), true);
}

/** Returns struct statx for `st` with the basic fields, which stx_mask marks as valid. */
export function encodeStatx(st: FileStat): Uint8Array {
  const bytes = new Uint8Array(STATX_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, STATX_BASIC_STATS, true);
  view.setUint32(4, st.blksize, true);
  view.setUint32(16, st.nlink, true);
  view.setUint32(20, st.uid, true);
  view.setUint32(24, st.gid, true);
  view.setUint16(28, st.mode, true);
  view.setBigUint64(32, st.ino, true);
  view.setBigUint64(40, BigInt(st.size), true);
  view.setBigUint64(48, BigInt(st.blocks), true);
  writeStatxTimestamp(view, 64, st.atimeNs);
  writeStatxTimestamp(view, 96, st.ctimeNs);
  writeStatxTimestamp(view, 112, st.mtimeNs);
  view.setUint32(128, deviceMajor(st.rdev), true);
  view.setUint32(132, deviceMinor(st.rdev), true);
  view.setUint32(136, deviceMajor(st.dev), true);
  view.setUint32(140, deviceMinor(st.dev), true);
  return bytes;
}
