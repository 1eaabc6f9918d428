/** Conversion of the BigInt64Array that the native hostFstat/hostLstatBeneath fill into FileStat. */
import type { FileStat } from './file.js';

export const HOST_STAT_FIELDS = 13;

export function newStatBuffer(): BigInt64Array {
  return new BigInt64Array(HOST_STAT_FIELDS);
}

export function statFromHost(raw: BigInt64Array): FileStat {
  return {
    dev: BigInt.asUintN(64, raw[0]),
    ino: BigInt.asUintN(64, raw[1]),
    mode: Number(raw[2]),
    nlink: Number(raw[3]),
    uid: Number(raw[4]),
    gid: Number(raw[5]),
    rdev: BigInt.asUintN(64, raw[6]),
    size: Number(raw[7]),
    blksize: Number(raw[8]),
    blocks: Number(raw[9]),
    atimeNs: raw[10],
    mtimeNs: raw[11],
    ctimeNs: raw[12],
  };
}
