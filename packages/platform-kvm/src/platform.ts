/**
 * The KVM platform: one VM per platform instance, guest page tables per address space, and a pool
 * of vCPUs, each with its native thread, that runs whichever contexts are switching. The
 * application runs in guest ring 3 under a guest kernel that turns every system call and
 * exception into an exit to the host.
 */
import type { Platform, PlatformOptions, PlatformSupports } from '@tsvisor/platform-api';
import { KvmAddressSpace } from './address-space.js';
import { KvmContext } from './context.js';
import { loadNative, type NativeAddon, type VmHandle } from './native.js';
import { VcpuPool } from './vcpu-pool.js';

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
  private readonly pool: VcpuPool;
  private nextAddressSpaceId = 1;

  /**
   * Options: `spinMicroseconds`, how long a switch waits synchronously (default
   * DEFAULT_SPIN_MICROSECONDS), and `maxVcpus`, the size of the vCPU pool (default and maximum:
   * what KVM allows one VM, at most the guest kernel's 126 per-vCPU blocks).
   */
  constructor(options: PlatformOptions = {}) {
    const spin = options.spinMicroseconds ?? DEFAULT_SPIN_MICROSECONDS;
    if (typeof spin !== 'number' || !Number.isFinite(spin) || spin < 0) {
      throw new TypeError(`kvm: spinMicroseconds must be a non-negative number of microseconds, got ${String(spin)}`);
    }
    this.spinNs = Math.round(spin * 1000);
    this.native = loadNative();
    this.vm = this.native.createVm();
    this.maxFileSize = this.native.vmFileSpan(this.vm);

    const kvmMax = this.native.maxVcpus(this.vm);
    // vCPUs are created only when no idle one is left, so the largest pool costs nothing until
    // that many threads run in the guest at once. Beyond that, contexts wait for a vCPU and take turns.
    // NOTE: with an 8-vCPU pool, programs of 2000 threads and more sometimes died of SIGSEGV or
    // ended early. The hand-over between contexts that share a vCPU under that load is unverified.
    const maxVcpus = options.maxVcpus ?? kvmMax;
    if (typeof maxVcpus !== 'number' || !Number.isInteger(maxVcpus) || maxVcpus < 1 || maxVcpus > kvmMax) {
      this.native.closeVm(this.vm);
      throw new TypeError(`kvm: maxVcpus must be an integer between 1 and ${kvmMax}, got ${String(maxVcpus)}`);
    }
    this.pool = new VcpuPool(this.native, this.vm, maxVcpus);
  }

  /** Number of vCPUs the pool has created, for tests and diagnostics. */
  get vcpuCount(): number {
    return this.pool.size;
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
    void this.vmHandle; // throws once the platform was closed
    const ctx = new KvmContext(this.native, this.pool, this.spinNs, (released) => this.contexts.delete(released));
    this.contexts.add(ctx);
    return ctx;
  }

  close(): void {
    if (this.vm === undefined) return;
    for (const ctx of [...this.contexts]) ctx.release();
    for (const as of [...this.addressSpaces]) as.release();
    this.pool.close();
    this.native.closeVm(this.vm);
    this.vm = undefined;
  }
}
