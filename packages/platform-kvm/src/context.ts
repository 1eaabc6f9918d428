/**
 * A context: the registers of one application thread, run on whichever vCPU of the platform's pool
 * is free when it switches. A switch spins briefly for the exit and otherwise returns a promise that
 * the vCPU thread settles through a thread-safe function, so the event loop stays free while the
 * application computes. When every vCPU is busy, the switch waits for one without blocking the
 * event loop.
 */
import createDebug from 'debug';
import type { AccessBits, AddressSpace, Context, Registers } from '@tsvisor/platform-api';
import { SwitchKind } from '@tsvisor/platform-api';
import { KvmAddressSpace } from './address-space.js';
import { decodeExit, type DecodedExit } from './exits.js';
import { RUN_PENDING, type NativeAddon } from './native.js';
import type { PooledVcpu, VcpuPool, VcpuUser } from './vcpu-pool.js';

const debug = createDebug('tsvisor:platform:kvm');

const SIGINFO_SIZE = 128;

interface PendingSwitch {
  readonly addressSpace: KvmAddressSpace;
  readonly registers: Registers;
  readonly resolve: (kind: SwitchKind) => void;
  readonly reject: (error: Error) => void;
}

export class KvmContext implements Context, VcpuUser {
  readonly signalInfo = new Uint8Array(SIGINFO_SIZE);
  private released = false;
  /** The vCPU running this context's switch, while one runs. */
  private vcpu: PooledVcpu | undefined;
  /** The vCPU of the last switch. It may still contain this context's FPU state and segment bases, which then need no reload. */
  private previousVcpu: PooledVcpu | undefined;
  /** A switch that waits for a vCPU (vcpu undefined) or for its exit (vcpu set). */
  private pending: PendingSwitch | undefined;
  private interruptPending = false;
  private readonly exitInfo = new Float64Array(2);
  private readonly decoded: DecodedExit = { kind: SwitchKind.Syscall, faultAddress: 0, faultAccess: 0 };

  constructor(
    private readonly native: NativeAddon,
    private readonly pool: VcpuPool,
    private readonly spinNs: number,
    private readonly onRelease: (ctx: KvmContext) => void,
  ) {}

  get faultAddress(): number {
    return this.decoded.faultAddress;
  }

  get faultAccess(): AccessBits {
    return this.decoded.faultAccess;
  }

  switch(as: AddressSpace, regs: Registers): SwitchKind | Promise<SwitchKind> {
    if (this.released) throw new Error('kvm: switch on a released context');
    if (!(as instanceof KvmAddressSpace)) throw new TypeError('kvm: switch needs an address space created by the same KVM platform');
    if (this.pending !== undefined || this.vcpu !== undefined) {
      throw new Error('kvm: switch called while another switch of this context is in progress');
    }
    void as.nativeHandle; // throws for a released address space before a vCPU is taken

    if (this.interruptPending) {
      this.interruptPending = false;
      return SwitchKind.Interrupted;
    }

    const vcpu = this.pool.acquire(this, this.previousVcpu);
    if (vcpu !== undefined) return this.runOn(vcpu, as, regs);

    return new Promise<SwitchKind>((resolve, reject) => {
      this.pending = { addressSpace: as, registers: regs, resolve, reject };
      this.pool.wait(this);
    });
  }

  interrupt(): void {
    if (this.released) return;
    if (this.vcpu !== undefined) {
      this.native.interrupt(this.vcpu.handle);
      return;
    }

    // A switch that still waits for a vCPU ends at once, so a signal reaches a thread even when
    // every vCPU is busy.
    const pending = this.pending;
    if (pending !== undefined && this.pool.cancelWait(this)) {
      this.pending = undefined;
      pending.resolve(SwitchKind.Interrupted);
      return;
    }
    this.interruptPending = true;
  }

  release(): void {
    if (this.released) return;
    this.released = true;

    const pending = this.pending;
    this.pending = undefined;
    if (this.vcpu !== undefined) {
      this.pool.discard(this.vcpu);
      this.vcpu = undefined;
    } else {
      this.pool.cancelWait(this);
    }
    this.previousVcpu = undefined;
    pending?.reject(new Error('kvm: the context was released during a switch'));
    this.onRelease(this);
  }

  /** Runs the switch that waited, on the vCPU the pool handed over. */
  grant(vcpu: PooledVcpu): void {
    const pending = this.pending;
    if (pending === undefined) {
      this.pool.release(vcpu);
      return;
    }
    this.pending = undefined;

    let result: SwitchKind | Promise<SwitchKind>;
    try {
      result = this.runOn(vcpu, pending.addressSpace, pending.registers);
    } catch (error) {
      pending.reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (typeof result === 'number') pending.resolve(result);
    else result.then(pending.resolve, pending.reject);
  }

  /** Runs on the JavaScript thread when the vCPU thread has finished a pending switch. */
  collect(): void {
    const pending = this.pending;
    const vcpu = this.vcpu;
    if (pending === undefined || vcpu === undefined) return;
    this.pending = undefined;
    try {
      const vector = this.native.finish(vcpu.handle, pending.registers.buffer);
      const kind = this.decode(vcpu, vector, pending.registers);
      this.giveBack(vcpu);
      pending.resolve(kind);
    } catch (error) {
      this.giveBack(vcpu);
      pending.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private runOn(vcpu: PooledVcpu, as: KvmAddressSpace, regs: Registers): SwitchKind | Promise<SwitchKind> {
    this.vcpu = vcpu;
    this.previousVcpu = vcpu;

    let vector: number;
    try {
      vector = this.native.run(vcpu.handle, as.nativeHandle, as.id, regs.buffer, this.spinNs);
    } catch (error) {
      this.giveBack(vcpu);
      throw error;
    }
    if (vector !== RUN_PENDING) {
      const kind = this.decode(vcpu, vector, regs);
      this.giveBack(vcpu);
      return kind;
    }
    return new Promise<SwitchKind>((resolve, reject) => {
      this.pending = { addressSpace: as, registers: regs, resolve, reject };
    });
  }

  /** Returns the vCPU to the pool, keeping an interrupt that came too late for this run. */
  private giveBack(vcpu: PooledVcpu): void {
    if (this.native.takeInterrupt(vcpu.handle)) this.interruptPending = true;
    this.vcpu = undefined;
    this.pool.release(vcpu);
  }

  private decode(vcpu: PooledVcpu, vector: number, regs: Registers): SwitchKind {
    if (vector < 32) this.native.exitInfo(vcpu.handle, this.exitInfo);
    decodeExit(vector, this.exitInfo[0], this.exitInfo[1], regs.rip, regs.rax, this.signalInfo, this.decoded);
    if (debug.enabled && this.decoded.kind !== SwitchKind.Syscall) {
      debug('exit vector %d -> kind %d at rip %s', vector, this.decoded.kind, regs.rip.toString(16));
    }
    return this.decoded.kind;
  }
}
