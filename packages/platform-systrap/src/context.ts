/**
 * A context of the systrap platform. It has one stub thread in every address space it has run
 * in, started on its first switch there, and keeps it until the context or the space is released.
 */
import type { AccessBits, AddressSpace, Context, Registers, SwitchKind } from '@tsvisor/platform-api';
import { SwitchKind as Kind } from '@tsvisor/platform-api';
import createDebug from 'debug';
import type { SystrapAddressSpace, ThreadOwner } from './address-space.js';
import { fromNativeError } from './errors.js';
import type { NativeAddon, NativeContext } from './native.js';

const log = createDebug('tsvisor:platform:systrap');

const PENDING = -1;
const EVENT_FAULT_ADDRESS = 128;
const EVENT_FAULT_ACCESS = 136;
const TWO_32 = 4294967296;

interface PlatformLink {
  own(space: unknown, method: string): SystrapAddressSpace;
  forgetContext(context: SystrapContext): void;
}

interface PendingSwitch {
  readonly registers: Registers;
  resolve(kind: SwitchKind): void;
  reject(error: Error): void;
}

export class SystrapContext implements Context, ThreadOwner {
  readonly signalInfo: Uint8Array;

  private readonly native: NativeContext;
  private readonly event: ArrayBuffer;
  private readonly eventWords: Uint32Array;
  private readonly threads = new Map<SystrapAddressSpace, number>();
  private pending: PendingSwitch | undefined;
  private interruptRequested = false;
  private released = false;

  constructor(
    addon: NativeAddon,
    private readonly platform: PlatformLink,
    spinMicroseconds: number,
  ) {
    this.event = new ArrayBuffer(addon.eventSize);
    this.eventWords = new Uint32Array(this.event);
    this.signalInfo = new Uint8Array(this.event, 0, 128);
    this.native = new addon.Context(this.event, () => this.onWake(), spinMicroseconds);
  }

  get faultAddress(): number {
    const index = EVENT_FAULT_ADDRESS / 4;
    return this.eventWords[index + 1] * TWO_32 + this.eventWords[index];
  }

  get faultAccess(): AccessBits {
    return this.eventWords[EVENT_FAULT_ACCESS / 4];
  }

  switch(as: AddressSpace, regs: Registers): SwitchKind | Promise<SwitchKind> {
    if (this.released) throw new Error('switch: the context was released');
    if (this.pending !== undefined) throw new Error('switch: another switch of this context is in progress');
    const space = this.platform.own(as, 'switch');

    if (this.interruptRequested) {
      this.interruptRequested = false;
      return Kind.Interrupted;
    }

    let slot = this.threads.get(space);
    if (slot === undefined) {
      slot = space.newThread(this);
      this.threads.set(space, slot);
    }

    let kind: number;
    try {
      kind = this.native.switch(space.native, slot, regs.buffer);
    } catch (error) {
      throw fromNativeError(error);
    }
    if (kind !== PENDING) return kind as SwitchKind;

    return new Promise<SwitchKind>((resolve, reject) => {
      this.pending = { registers: regs, resolve, reject };
      this.native.startWait();
    });
  }

  interrupt(): void {
    if (this.released) return;
    if (!this.native.interrupt()) this.interruptRequested = true;
  }

  release(): void {
    if (this.released) return;
    this.released = true;

    const pending = this.pending;
    this.pending = undefined;
    for (const [space, slot] of this.threads) {
      try {
        space.exitThread(this, slot);
      } catch (error) {
        if (log.enabled) log('exiting the stub thread in slot %d of stub %d failed: %s', slot, space.pid, (error as Error).message);
      }
    }
    this.threads.clear();
    this.native.release();
    this.platform.forgetContext(this);
    pending?.reject(new Error('switch: the context was released while application code ran'));
  }

  forgetAddressSpace(space: SystrapAddressSpace): void {
    this.threads.delete(space);
  }

  private onWake(): void {
    const pending = this.pending;
    if (pending === undefined) return;
    this.pending = undefined;
    let kind: number;
    try {
      kind = this.native.complete(pending.registers.buffer);
    } catch (error) {
      pending.reject(fromNativeError(error) as Error);
      return;
    }
    pending.resolve(kind as SwitchKind);
  }
}
