/**
 * The KVM platform: one VM per platform instance, guest page tables per address space, a vCPU and
 * its native thread per context. A released context's vCPU is parked in the VM and reused by the
 * next context until close(). The application runs in guest ring 3 under a guest kernel that
 * turns every system call and exception into an exit to the host.
 */
import type { Platform, PlatformOptions, PlatformSupports } from '@tsvisor/platform-api';
import { KvmAddressSpace } from './address-space.js';
import { KvmContext } from './context.js';
import { loadNative, type NativeAddon, type VmHandle } from './native.js';

/**
 * How long a switch spins for the exit before it returns a promise. A system call round trip on
 * nested KVM takes tens of microseconds, so the spin must cover that to keep the hot path
 * synchronous.
 */
export const DEFAULT_SPIN_MICROSECONDS = 200;

/** The first address above the lower half of a 48-bit address space, which guest ring 3 may use. */
const USER_ADDRESS_END = 0x8000_0000_0000;

export class KvmPlatform implements Platform {
  readonly name = 'kvm';
  readonly supports: PlatformSupports = { exactFaultAccess: true, sharedAddressSpaces: true };
  readonly minUserAddress = 0x10000;
  readonly maxUserAddress = USER_ADDRESS_END - 0x1000;
  /** End of the file offsets mapFile accepts: each file gets a fixed guest-physical window. */
  readonly maxFileSize: number;

  private readonly native: NativeAddon;
  private vm: VmHandle | undefined;
  private readonly spinNs: number;
  private readonly addressSpaces = new Set<KvmAddressSpace>();
  private readonly contexts = new Set<KvmContext>();
  private nextAddressSpaceId = 1;

  /** Options: `spinMicroseconds`, how long a switch waits synchronously (default DEFAULT_SPIN_MICROSECONDS). */
  constructor(options: PlatformOptions = {}) {
    const spin = options.spinMicroseconds ?? DEFAULT_SPIN_MICROSECONDS;
    if (typeof spin !== 'number' || !Number.isFinite(spin) || spin < 0) {
      throw new TypeError(`kvm: spinMicroseconds must be a non-negative number of microseconds, got ${String(spin)}`);
    }
    this.spinNs = Math.round(spin * 1000);
    this.native = loadNative();
    this.vm = this.native.createVm();
    this.maxFileSize = this.native.vmFileSpan(this.vm);
  }

  private get vmHandle(): VmHandle {
    if (this.vm === undefined) throw new Error('kvm: the platform was closed');
    return this.vm;
  }

  newAddressSpace(): KvmAddressSpace {
    const handle = this.native.createAddressSpace(this.vmHandle);
    const as = new KvmAddressSpace(this.native, handle, this.nextAddressSpaceId++, (released) => this.addressSpaces.delete(released));
    this.addressSpaces.add(as);
    return as;
  }

  newContext(): KvmContext {
    const ctx = new KvmContext(this.native, this.vmHandle, this.spinNs, (released) => this.contexts.delete(released));
    this.contexts.add(ctx);
    return ctx;
  }

  close(): void {
    if (this.vm === undefined) return;
    for (const ctx of [...this.contexts]) ctx.release();
    for (const as of [...this.addressSpaces]) as.release();
    this.native.closeVm(this.vm);
    this.vm = undefined;
  }
}
