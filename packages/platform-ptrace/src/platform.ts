/** The ptrace platform: address spaces are stub processes, contexts are threads traced in them. */
import { hostMinUserAddress, type Platform, type PlatformOptions, type PlatformSupports } from '@tsvisor/platform-api';
import createDebug from 'debug';
import { PtraceAddressSpace } from './address-space.js';
import { PtraceContext } from './context.js';
import { loadNative, type NativeAddon } from './native.js';

const log = createDebug('tsvisor:platform:ptrace');

/**
 * How long a switch polls for the stub thread's stop before it returns a promise, in
 * microseconds. Long enough to cover a system call round trip (about 20 µs measured on a 2-core
 * VM), short enough not to burn a CPU while application code computes.
 */
export const DEFAULT_SPIN_MICROSECONDS = 50;

function spinOption(options: PlatformOptions | undefined): number {
  const value = options?.spinMicroseconds ?? DEFAULT_SPIN_MICROSECONDS;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`ptrace platform: spinMicroseconds must be a non-negative number of microseconds, got ${String(value)}`);
  }
  return value;
}

export class PtracePlatform implements Platform {
  readonly name = 'ptrace';
  readonly supports: PlatformSupports = { exactFaultAccess: false, sharedAddressSpaces: true };
  readonly minUserAddress: number;
  readonly maxUserAddress: number;

  private readonly native: NativeAddon;
  private readonly spinMicroseconds: number;
  private readonly spaces = new Set<PtraceAddressSpace>();
  private readonly contexts = new Set<PtraceContext>();
  private closed = false;

  constructor(options?: PlatformOptions) {
    this.spinMicroseconds = spinOption(options);
    this.native = loadNative();
    this.minUserAddress = hostMinUserAddress();
    this.maxUserAddress = this.native.stubBase;
  }

  newAddressSpace(): PtraceAddressSpace {
    this.checkOpen('newAddressSpace');
    const space = new PtraceAddressSpace(this.native, this);
    this.spaces.add(space);
    return space;
  }

  newContext(): PtraceContext {
    this.checkOpen('newContext');
    const context = new PtraceContext(this.native, this, this.spinMicroseconds);
    this.contexts.add(context);
    return context;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;

    // Stop every running switch first, so that no waiter thread is left waiting on a thread that
    // another context's release would otherwise have to stop.
    for (const context of this.contexts) context.cancel();
    for (const context of [...this.contexts]) context.release();
    for (const space of [...this.spaces]) space.release();
    if (log.enabled) log('platform closed');
  }

  forgetAddressSpace(space: PtraceAddressSpace): void {
    this.spaces.delete(space);
  }

  forgetContext(context: PtraceContext): void {
    this.contexts.delete(context);
  }

  private checkOpen(method: string): void {
    if (this.closed) throw new Error(`${method}: the ptrace platform has been closed`);
  }
}
