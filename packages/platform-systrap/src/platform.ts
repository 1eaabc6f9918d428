/** The systrap platform: address spaces are stub processes, contexts run on threads inside them. */
import {
  hostMinUserAddress,
  PlatformLimitError,
  type Platform,
  type PlatformOptions,
  type PlatformSupports,
} from '@tsvisor/platform-api';
import createDebug from 'debug';
import { SystrapAddressSpace } from './address-space.js';
import { SystrapContext } from './context.js';
import { loadNative, type NativeAddon } from './native.js';

const log = createDebug('tsvisor:platform:systrap');

/**
 * How long the sentry spins for a stub thread's next event before it returns a promise, and how
 * long a stub thread spins for the sentry's reply before it sleeps, in microseconds. Measured on a
 * 2-core VM, 50 µs keeps a getpid round trip near 3–4 µs when the two sides run on different CPUs;
 * much shorter budgets often miss the answer and pay a futex wake-up of 15–70 µs. Both loops
 * call sched_yield now and then, so sharing one CPU costs about 8 µs instead of a whole budget.
 */
export const DEFAULT_SPIN_MICROSECONDS = 50;

function microsecondsOption(options: PlatformOptions | undefined, name: string): number {
  const value = options?.[name] ?? DEFAULT_SPIN_MICROSECONDS;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1_000_000) {
    throw new TypeError(`systrap platform: ${name} must be a number of microseconds between 0 and 1000000, got ${String(value)}`);
  }
  return value;
}

function maxContextsOption(options: PlatformOptions | undefined, slots: number): number {
  const value = options?.maxContexts ?? slots;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > slots) {
    throw new TypeError(`systrap platform: maxContexts must be an integer between 1 and ${slots}, got ${String(value)}`);
  }
  return value;
}

/**
 * Options: `spinMicroseconds` (sentry side) and `stubSpinMicroseconds` (stub side), both
 * DEFAULT_SPIN_MICROSECONDS unless given, and `maxContexts`, the number of live contexts
 * newContext allows (default and maximum: the stub thread slots of one address space).
 */
export class SystrapPlatform implements Platform {
  readonly name = 'systrap';
  readonly supports: PlatformSupports = { exactFaultAccess: true, sharedAddressSpaces: true };
  readonly minUserAddress: number;
  readonly maxUserAddress: number;

  private readonly native: NativeAddon;
  private readonly spinMicroseconds: number;
  private readonly stubSpinMicroseconds: number;
  private readonly maxContexts: number;
  private readonly spaces = new Set<SystrapAddressSpace>();
  private readonly contexts = new Set<SystrapContext>();
  private closed = false;

  constructor(options?: PlatformOptions) {
    this.spinMicroseconds = microsecondsOption(options, 'spinMicroseconds');
    this.stubSpinMicroseconds = microsecondsOption(options, 'stubSpinMicroseconds');
    this.native = loadNative();
    this.maxContexts = maxContextsOption(options, this.native.maxThreadsPerAddressSpace);
    this.minUserAddress = hostMinUserAddress();
    this.maxUserAddress = this.native.maxUserAddress;
  }

  newAddressSpace(): SystrapAddressSpace {
    this.checkOpen('newAddressSpace');
    const space = new SystrapAddressSpace(
      new this.native.AddressSpace(this.stubSpinMicroseconds, this.spinMicroseconds),
      this,
    );
    this.spaces.add(space);
    if (log.enabled) log('stub process %d started', space.pid);
    return space;
  }

  newContext(): SystrapContext {
    this.checkOpen('newContext');

    // A context has at most one stub thread per address space, so while the live contexts fit in
    // the slots of one address space, no switch can find its address space out of slots.
    if (this.contexts.size >= this.maxContexts) {
      throw new PlatformLimitError(
        `systrap: too many contexts: ${this.maxContexts} are live, the maximum set by maxContexts. Release a context first`,
      );
    }
    const context = new SystrapContext(this.native, this, this.spinMicroseconds);
    this.contexts.add(context);
    return context;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;

    // Killing the stubs first ends every switch still in progress, so releasing the contexts
    // then joins waiter threads that have nothing left to wait for.
    for (const space of [...this.spaces]) space.release();
    for (const context of [...this.contexts]) context.release();
    if (log.enabled) log('platform closed');
  }

  /** Checks that `space` is a live address space of this platform. */
  own(space: unknown, method: string): SystrapAddressSpace {
    if (!(space instanceof SystrapAddressSpace) || !this.spaces.has(space)) {
      throw new TypeError(`${method}: the address space was not created by this systrap platform, or it was released`);
    }
    return space;
  }

  forgetAddressSpace(space: SystrapAddressSpace): void {
    this.spaces.delete(space);
  }

  forgetContext(context: SystrapContext): void {
    this.contexts.delete(context);
  }

  private checkOpen(method: string): void {
    if (this.closed) throw new Error(`${method}: the systrap platform has been closed`);
  }
}
