/**
 * The typed surface of the sentry's native addon (native/*.cc), loaded once with `bindings`.
 * Every function throws an Error whose message names the failed host call and its errno, with the
 * errno name in `code` (for example "ENOENT") and its value in `errno`.
 */
import bindings from 'bindings';

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
  /** Detaches every chunk ArrayBuffer, unmaps the file and closes the memfd. Idempotent. */
  close(): void;
}

export interface NativeAddon {
  MemoryFile: new (name: string, capacity: number) => NativeMemoryFile;
}

export const native: NativeAddon = bindings('sentry');
