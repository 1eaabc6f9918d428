/**
 * The whole surface of the systrap platform's C++ addon (native/addon.cc). Every method runs on
 * the JavaScript main thread; the only other native threads are the per-context waiters, which
 * reach JavaScript through the `onWake` callback.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A stub process: one host address space whose threads run application code under seccomp. */
export interface NativeAddressSpace {
  /** Maps [offset, offset + length) of the sentry's descriptor `fd` at `addr` (MAP_SHARED | MAP_FIXED). */
  mapFile(addr: number, fd: number, offset: number, length: number, prot: number): void;
  unmap(addr: number, length: number): void;
  /** Starts a stub thread, waits until it sits in its signal handler, and returns its slot index. */
  newThread(): number;
  /** Makes the thread in `slot` exit and frees the slot. No switch of it may be in progress. */
  exitThread(slot: number): void;
  /** SIGKILLs and reaps the stub process. */
  release(): void;
  /** Host pid of the stub process, or -1 once released. */
  readonly pid: number;
}

export interface NativeContext {
  /**
   * Writes `registers` (platform-api's Registers layout) into the signal frame of the stub thread
   * in `slot`, lets it run, and spins for its next event. Returns the SwitchKind number, or -1
   * when the thread still runs; then call `startWait`, and `complete` once `onWake` was called.
   */
  switch(as: NativeAddressSpace, slot: number, registers: ArrayBuffer): number;
  /** Hands the running switch to the waiter thread, which calls `onWake` when the thread stops. */
  startWait(): void;
  /** Stores the stopped thread's registers and returns the SwitchKind; throws if the stub died. */
  complete(registers: ArrayBuffer): number;
  /** Sends the interrupt signal to the thread of the switch in progress; false when none runs. */
  interrupt(): boolean;
  /** Ends and joins the waiter thread. */
  release(): void;
}

export interface NativeAddon {
  /** Starts a stub with one thread and stops it; returns "" when that works, otherwise what failed. */
  probe(): string;
  /** `new AddressSpace(stubSpinMicroseconds, controlSpinMicroseconds)` forks a stub process. */
  AddressSpace: new (stubSpinMicroseconds: number, controlSpinMicroseconds: number) => NativeAddressSpace;
  /**
   * `new Context(event, onWake, spinMicroseconds)`. After each switch `event` holds the siginfo
   * (bytes 0–127), the fault address (u64 at 128) and the fault's access bits (u32 at 136).
   */
  Context: new (event: ArrayBuffer, onWake: () => void, spinMicroseconds: number) => NativeContext;
  /** The first address the application may not use; the stub's own pages lie above it. */
  readonly maxUserAddress: number;
  readonly maxThreadsPerAddressSpace: number;
  /** Size of a context's event buffer in bytes. */
  readonly eventSize: number;
}

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let addon: NativeAddon | undefined;

/** Loads the addon built by `npm run build` (node-gyp). Throws when it has not been built. */
export function loadNative(): NativeAddon {
  if (addon === undefined) {
    const require = createRequire(import.meta.url);
    const bindings = require('bindings') as (options: { bindings: string; module_root: string }) => NativeAddon;
    addon = bindings({ bindings: 'systrap', module_root: packageRoot });
  }
  return addon;
}
