/** Encoding of struct linux_dirent64 (<linux/dirent.h>) for directories the sentry synthesizes. */

/** d_type values from <dirent.h>. */
export const DT_UNKNOWN = 0;
export const DT_FIFO = 1;
export const DT_CHR = 2;
export const DT_DIR = 4;
export const DT_BLK = 6;
export const DT_REG = 8;
export const DT_LNK = 10;
export const DT_SOCK = 12;

/** Fixed part of struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1). */
const HEADER_SIZE = 19;

export function direntSize(nameLength: number): number {
  return (HEADER_SIZE + nameLength + 1 + 7) & ~7;
}

/**
 * Writes one entry at `offset` of `dst` and returns its record length, or 0 when it does not fit.
 * `name` is a latin1 string (one character per byte).
 */
export function writeDirent(dst: Uint8Array, offset: number, ino: bigint, nextOffset: bigint, type: number, name: string): number {
  const length = direntSize(name.length);
  if (offset + length > dst.length) return 0;
  const view = new DataView(dst.buffer, dst.byteOffset + offset, length);
  view.setBigUint64(0, ino, true);
  view.setBigInt64(8, nextOffset, true);
  view.setUint16(16, length, true);
  view.setUint8(18, type);
  for (let i = 0; i < name.length; i++) view.setUint8(HEADER_SIZE + i, name.charCodeAt(i));
  for (let i = HEADER_SIZE + name.length; i < length; i++) view.setUint8(i, 0);
  return length;
}
