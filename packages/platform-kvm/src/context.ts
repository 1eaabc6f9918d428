/**
 * A context: one vCPU of the platform's VM, driven by its own native thread. A switch spins briefly
 * for the exit and otherwise returns a promise that the vCPU thread settles through a thread-safe
 * function, so the event loop stays free while the application computes.
 */
import createDebug from 'debug';
import type { AccessBits, AddressSpace, Context, Registers } from '@tsvisor/platform-api';
import { SwitchKind } from '@tsvisor/platform-api';
import { KvmAddressSpace } from './address-space.js';
import { decodeExit, type DecodedExit } from './exits.js';
import { RUN_PENDING, type NativeAddon, type VcpuHandle, type VmHandle } from './native.js';

const debug = createDebug('tsvisor:platform:kvm');

const SIGINFO_SIZE = 128;

interface PendingSwitch {
  readonly registers: Registers;
  readonly resolve: (kind: SwitchKind) => void;
  readonly reject: (error: Error) => void;
}

export class KvmContext implements Context {
  readonly signalInfo = new Uint8Array(SIGINFO_SIZE);
  private handle: VcpuHandle | undefined;
  private pending: PendingSwitch | undefined;
  private readonly exitInfo = new Float64Array(2);
  private readonly decoded: DecodedExit = { kind: SwitchKind.Syscall, faultAddress: 0, faultAccess: 0 };

  constructor(
    private readonly native: NativeAddon,
    vm: VmHandle,
    private readonly spinNs: number,
    private readonly onRelease: (ctx: KvmContext) => void,
  ) {
    this.handle = native.createVcpu(vm, () => this.collect());
  }

  get faultAddress(): number {
    return this.decoded.faultAddress;
  }

  get faultAccess(): AccessBits {
    return this.decoded.faultAccess;
  }

  switch(as: AddressSpace, regs: Registers): SwitchKind | Promise<SwitchKind> {
    if (this.handle === undefined) throw new Error('kvm: switch on a released context');
    if (!(as instanceof KvmAddressSpace)) throw new TypeError('kvm: switch needs an address space created by the same KVM platform');
    if (this.pending !== undefined) throw new Error('kvm: switch called while another switch of this context is in progress');

    const vector = this.native.run(this.handle, as.nativeHandle, as.id, regs.buffer, this.spinNs);
    if (vector !== RUN_PENDING) return this.decode(vector, regs);
    return new Promise<SwitchKind>((resolve, reject) => {
      this.pending = { registers: regs, resolve, reject };
    });
  }

  interrupt(): void {
    if (this.handle !== undefined) this.native.interrupt(this.handle);
  }

  release(): void {
    if (this.handle === undefined) return;
    const pending = this.pending;
    this.pending = undefined;
    this.native.releaseVcpu(this.handle);
    this.handle = undefined;
    pending?.reject(new Error('kvm: the context was released during a switch'));
    this.onRelease(this);
  }

  /** Runs on the JavaScript thread when the vCPU thread has finished a pending switch. */
  private collect(): void {
    const pending = this.pending;
    if (pending === undefined || this.handle === undefined) return;
    this.pending = undefined;
    try {
      const vector = this.native.finish(this.handle, pending.registers.buffer);
      pending.resolve(this.decode(vector, pending.registers));
    } catch (error) {
      pending.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private decode(vector: number, regs: Registers): SwitchKind {
    if (vector < 32) this.native.exitInfo(this.handle!, this.exitInfo);
    decodeExit(vector, this.exitInfo[0], this.exitInfo[1], regs.rip, regs.rax, this.signalInfo, this.decoded);
    if (debug.enabled && this.decoded.kind !== SwitchKind.Syscall) {
      debug('exit vector %d -> kind %d at rip %s', vector, this.decoded.kind, regs.rip.toString(16));
    }
    return this.decoded.kind;
  }
}
