/**
 * A context of the ptrace platform: one stub thread in each address space it has run in, created
 * on its first switch into that address space. The native half does the switching.
 */
import type { AccessBits, AddressSpace, Context, Registers, SwitchKind } from '@tsvisor/platform-api';
import { SwitchKind as Kind } from '@tsvisor/platform-api';
import { PtraceAddressSpace, type ThreadHolder } from './address-space.js';
import { classifySignal, type FaultDetails } from './fault.js';
import type { NativeAddon, NativeContext } from './native.js';

export interface ContextOwner {
  forgetContext(context: PtraceContext): void;
}

export class PtraceContext implements Context, ThreadHolder {
  readonly signalInfo = new Uint8Array(128);
  private readonly fault: FaultDetails = { address: 0, access: 0 };
  private readonly native: NativeContext;
  private readonly threads = new Map<PtraceAddressSpace, number>();
  private released = false;

  constructor(
    addon: NativeAddon,
    private readonly owner: ContextOwner,
    spinMicroseconds: number,
  ) {
    this.native = new addon.NativeContext(this.signalInfo, spinMicroseconds);
  }

  get faultAddress(): number {
    return this.fault.address;
  }

  get faultAccess(): AccessBits {
    return this.fault.access;
  }

  switch(as: AddressSpace, regs: Registers): SwitchKind | Promise<SwitchKind> {
    if (!(as instanceof PtraceAddressSpace) || as.released || this.released) this.rejectSwitch(as);
    const space = as as PtraceAddressSpace;
    let tid = this.threads.get(space);
    if (tid === undefined) {
      tid = space.cloneThread(this);
      this.threads.set(space, tid);
      this.native.forgetFpState();
    }

    const result = this.native.switch(tid, regs.bytes);
    if (typeof result === 'number') {
      return (result === Kind.Signal ? this.classify(space, regs) : result) as SwitchKind;
    }
    return result.then((kind) => (kind === Kind.Signal ? this.classify(space, regs) : kind) as SwitchKind);
  }

  interrupt(): void {
    if (!this.released) this.native.interrupt();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.native.cancel();
    for (const [space, tid] of this.threads) space.exitThread(this, tid);
    this.threads.clear();
    this.native.release();
    this.owner.forgetContext(this);
  }

  /**
   * Stops a switch in progress so that the context can be released. Its promise resolves to
   * Interrupted, or to the stop the thread had reached already.
   */
  cancel(): void {
    if (!this.released) this.native.cancel();
  }

  forgetAddressSpace(space: PtraceAddressSpace): void {
    this.threads.delete(space);
  }

  private classify(space: PtraceAddressSpace, regs: Registers): number {
    return classifySignal(this.signalInfo, regs.rip, space.mappings, this.fault);
  }

  private rejectSwitch(as: AddressSpace): never {
    if (this.released) throw new Error('switch: the context has been released');
    if (!(as instanceof PtraceAddressSpace)) throw new TypeError('switch: the address space was not created by the ptrace platform');
    throw new Error(`switch: the address space (stub process ${as.pid}) has been released`);
  }
}
