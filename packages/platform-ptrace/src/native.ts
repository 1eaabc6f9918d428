/**
 * The whole surface of the ptrace platform's C++ addon (native/addon.cc). Every function runs on
 * the JavaScript main thread, which is the tracer of every stub process it creates.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The native half of one context. */
export interface NativeContext {
  /**
   * Loads `registers` (platform-api's Registers layout) into stub thread `tid`, resumes it with
   * PTRACE_SYSEMU and stores its registers back at the next stop. Returns the SwitchKind number,
   * or a promise of it when the thread did not stop within the polling time. Signal covers every
   * signal other than the interrupt's SIGSTOP; its siginfo is in the context's signal-info buffer.
   */
  switch(tid: number, registers: Uint8Array): number | Promise<number>;
  /** Stops the thread of the switch in progress (with SIGSTOP), or makes the next switch return Interrupted. */
  interrupt(): void;
  /**
   * Stops the thread of the switch in progress and collects the stop, which settles the switch's
   * promise: Interrupted, unless the thread had stopped for another reason first. Does nothing
   * when no switch is in progress.
   */
  cancel(): void;
  /** Makes the next switch write the FPU state in full; called when the context gets a new stub thread. */
  forgetFpState(): void;
  /** Joins the waiter thread. No switch may be in progress and the context's stub threads must be gone. */
  release(): void;
}

export interface NativeAddon {
  /** Starts and kills a stub process; returns "" when that works, otherwise what failed. */
  probe(): string;
  /** Starts a stub process with an empty address space below `stubBase`; returns its pid. */
  createStub(): number;
  /** Maps [offset, offset + length) of the sentry's descriptor `fd` at `addr` in the stub (MAP_SHARED | MAP_FIXED). */
  stubMapFile(pid: number, addr: number, fd: number, offset: number, length: number, prot: number): void;
  stubUnmap(pid: number, addr: number, length: number): void;
  /** Creates a stopped application thread in the stub and returns its thread id. */
  stubCloneThread(pid: number): number;
  /** Makes a stopped application thread exit and reaps it. */
  stubExitThread(pid: number, tid: number): void;
  /** SIGKILLs the stub and reaps all its threads. */
  killStub(pid: number): void;
  NativeContext: new (signalInfo: Uint8Array, spinMicroseconds: number) => NativeContext;
  /** Address of the stub program's page, the first address the application may not use. */
  readonly stubBase: number;
}

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let addon: NativeAddon | undefined;

/** Loads the addon built by `npm run build` (node-gyp). Throws when it has not been built. */
export function loadNative(): NativeAddon {
  if (addon === undefined) {
    const require = createRequire(import.meta.url);
    const bindings = require('bindings') as (options: { bindings: string; module_root: string }) => NativeAddon;
    addon = bindings({ bindings: 'tsvisor_ptrace', module_root: packageRoot });
  }
  return addon;
}
