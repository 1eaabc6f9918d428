/**
 * The typed surface of the sentry's native addon (native/*.cc), loaded once with `bindings`.
 * Every function throws an Error whose message names the failed host call and its errno, with the
 * errno name in `code` (for example "ENOENT") and its value in `errno`.
 */
import bindings from 'bindings';

/** Read-modify-write operations of NativeMemoryFile.atomicFetch: EXCHANGE stores the operand, the others `old OP operand`. */
export const AtomicOperation = {
  EXCHANGE: 0,
  ADD: 1,
  OR: 2,
  AND: 3,
  XOR: 4,
} as const;

export type AtomicOperation = (typeof AtomicOperation)[keyof typeof AtomicOperation];

/** The memfd holding all application memory, mapped once into the sentry (native/memory-file.cc). */
export interface NativeMemoryFile {
  /** The memfd's descriptor, which platforms map into application address spaces. */
  readonly fd: number;
  /** Bytes of address space reserved for the mapping; the file never grows beyond it. */
  readonly capacity: number;
  /** Sets the file's size in bytes (page-aligned, at most `capacity`). */
  resize(size: number): void;
  /** Returns the 1 GiB ArrayBuffer over bytes [index GiB, (index + 1) GiB) of the mapping. */
  chunk(index: number): ArrayBuffer;
  /** Frees the pages of a page-aligned range (fallocate PUNCH_HOLE); they read as zeros afterwards. */
  decommit(offset: number, length: number): void;
  /** Allocates host memory for every page of a page-aligned range now (MADV_POPULATE_WRITE). */
  prefault(offset: number, length: number): void;
  /** Sets out[i] to 1 when page i of the page-aligned range is in host memory, else 0 (mincore). */
  resident(offset: number, length: number, out: Uint8Array): void;
  /**
   * Applies `operation` with `operand` to the 32-bit word at byte `offset` (4-byte aligned, inside
   * the file) as one atomic read-modify-write, and returns the old value as a signed integer.
   */
  atomicFetch(offset: number, operation: AtomicOperation, operand: number): number;
  /** Detaches every chunk ArrayBuffer, unmaps the file and closes the memfd. Idempotent. */
  close(): void;
}

/**
 * Host file system calls (native/host-fs.cc). Unlike the rest of the addon, these return -errno
 * instead of throwing, because their errno usually goes straight back to the application. Paths
 * are latin1 strings (one character per byte). `stat` outputs are BigInt64Array(13) filled with
 * dev, ino, mode, nlink, uid, gid, rdev, size, blksize, blocks, atime, mtime, ctime (times in ns).
 */
export interface NativeHostFs {
  hostOpenRoot(path: string): number;
  hostOpenBeneath(dirfd: number, path: string, flags: number): number;
  hostLstatBeneath(dirfd: number, path: string, out: BigInt64Array): number;
  hostReadlinkBeneath(dirfd: number, path: string): string | number;
  hostFstat(fd: number, out: BigInt64Array): number;
  /** Fills `out` (BigInt64Array(12)) with struct statfs: type, bsize, blocks, bfree, bavail, files, ffree, fsid[0], fsid[1], namelen, frsize, flags. */
  hostFstatfs(fd: number, out: BigInt64Array): number;
  hostStatfsBeneath(dirfd: number, path: string, out: BigInt64Array): number;
  hostGetdents64(fd: number, buffer: Uint8Array): number;
  /** read(2) when position is -1, pread(2) otherwise. */
  hostPread(fd: number, buffer: Uint8Array, position: number): number;
  /** write(2) when position is -1, pwrite(2) otherwise. */
  hostPwrite(fd: number, buffer: Uint8Array, position: number): number;
  hostRecv(fd: number, buffer: Uint8Array): number;
  hostSend(fd: number, buffer: Uint8Array): number;
  hostLseek(fd: number, offset: number, whence: number): number;
  hostClose(fd: number): number;
  hostDup(fd: number): number;
  hostGetFl(fd: number): number;
  hostReopen(fd: number, flags: number): number;
  hostTcgets(fd: number, out: Uint8Array): number;
  hostGetWinsize(fd: number, out: Uint8Array): number;
  /** Sets the terminal's struct termios (36 bytes); `request` is TCSETS, TCSETSW or TCSETSF, others throw. */
  hostTcsets(fd: number, request: number, termios: Uint8Array): number;
  hostSetWinsize(fd: number, winsize: Uint8Array): number;
  /** Discards the terminal's queued input and/or output (ioctl TCFLSH with `queue`). */
  hostTcflsh(fd: number, queue: number): number;
  /** Suspends or resumes the terminal's output or input (ioctl TCXONC with `action`). */
  hostTcxonc(fd: number, action: number): number;
  /** Bytes written to the terminal but not yet sent (ioctl TIOCOUTQ), or -errno. */
  hostOutq(fd: number): number;
  hostPoll(fd: number, events: number): number;
  /** Bytes ready to read on a pipe, socket or terminal (ioctl FIONREAD), or -errno. */
  hostFionread(fd: number): number;
  /** Calls `callback` once with the ready events or -errno; returns a watch id or -errno. */
  hostWatchFd(fd: number, events: number, callback: (result: number) => void): number;
  hostUnwatchFd(id: number): void;
}

export interface NativeAddon extends NativeHostFs {
  MemoryFile: new (name: string, capacity: number) => NativeMemoryFile;
}

export const native: NativeAddon = bindings('sentry');
