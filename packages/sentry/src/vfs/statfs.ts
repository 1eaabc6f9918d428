/** File system statistics (statfs(2)) and their encoding as struct statfs of x86-64 (120 bytes). */

export interface FsStat {
  type: bigint;
  blockSize: bigint;
  blocks: bigint;
  freeBlocks: bigint;
  availableBlocks: bigint;
  files: bigint;
  freeFiles: bigint;
  fsid: readonly [number, number];
  nameMax: bigint;
  fragmentSize: bigint;
  /** ST_* mount flags, such as ST_RDONLY. */
  flags: bigint;
}

export const STATFS_SIZE = 120;
export const HOST_STATFS_FIELDS = 12;

/** statfs f_flags bits from <sys/statvfs.h>. */
export const ST_RDONLY = 1n;
export const ST_NOSUID = 2n;
export const ST_NODEV = 4n;
export const ST_NOEXEC = 8n;

/** Converts what the native hostFstatfs/hostStatfsBeneath fill in. */
export function statfsFromHost(raw: BigInt64Array): FsStat {
  return {
    type: raw[0],
    blockSize: raw[1],
    blocks: raw[2],
    freeBlocks: raw[3],
    availableBlocks: raw[4],
    files: raw[5],
    freeFiles: raw[6],
    fsid: [Number(raw[7]), Number(raw[8])],
    nameMax: raw[9],
    fragmentSize: raw[10],
    flags: raw[11],
  };
}

export function encodeStatfs(st: FsStat): Uint8Array {
  const bytes = new Uint8Array(STATFS_SIZE);
  const view = new DataView(bytes.buffer);
  view.setBigInt64(0, st.type, true);
  view.setBigInt64(8, st.blockSize, true);
  view.setBigUint64(16, BigInt.asUintN(64, st.blocks), true);
  view.setBigUint64(24, BigInt.asUintN(64, st.freeBlocks), true);
  view.setBigUint64(32, BigInt.asUintN(64, st.availableBlocks), true);
  view.setBigUint64(40, BigInt.asUintN(64, st.files), true);
  view.setBigUint64(48, BigInt.asUintN(64, st.freeFiles), true);
  view.setInt32(56, st.fsid[0], true);
  view.setInt32(60, st.fsid[1], true);
  view.setBigInt64(64, st.nameMax, true);
  view.setBigInt64(72, st.fragmentSize, true);
  view.setBigInt64(80, st.flags, true);
  return bytes;
}
