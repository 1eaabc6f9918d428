/**
 * The whole surface of the KVM platform's C++ addon (native/addon.cc). Handles are opaque externals,
 * freed only by the matching release function. Every function runs on the JavaScript thread; the
 * vCPU threads call back through `onExit` only.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

declare const vmBrand: unique symbol;
declare const addressSpaceBrand: unique symbol;
declare const vcpuBrand: unique symbol;
export type VmHandle = { readonly [vmBrand]: true };
export type AddressSpaceHandle = { readonly [addressSpaceBrand]: true };
export type VcpuHandle = { readonly [vcpuBrand]: true };

/** Exit vectors beyond the 32 x86 exception vectors (native/guest_layout.h). */
export const EXIT_SYSCALL = 0x100;
export const EXIT_INTERRUPTED = 0x101;
/** int 0x80: rip points past the instruction and rax holds the 32-bit system call number. */
export const EXIT_COMPAT_SYSCALL = 0x102;
/** Returned by `run` when the exit will be announced through `onExit`. */
export const RUN_PENDING = -1;

export interface NativeAddon {
  /** "" when a guest starts and completes a system call on this host, otherwise why not. */
  probe(): string;
  /** Whether the CPU reports that it runs under a hypervisor. */
  hostIsVirtualMachine(): boolean;

  /** Creates a VM with the guest kernel loaded. */
  createVm(): VmHandle;
  /** Bytes of each file that mapFile can reach, fixed for the VM's life by the guest-physical address width. */
  vmFileSpan(vm: VmHandle): number;
  /** Frees the VM and its parked vCPUs. Every address space and vCPU of it must have been released. */
  closeVm(vm: VmHandle): void;

  createAddressSpace(vm: VmHandle): AddressSpaceHandle;
  releaseAddressSpace(as: AddressSpaceHandle): void;
  /** Maps [offset, offset + length) of the file open as `fd` at `addr` with platform-api Access bits. */
  mapFile(as: AddressSpaceHandle, addr: number, fd: number, offset: number, length: number, access: number): void;
  unmap(as: AddressSpaceHandle, addr: number, length: number): void;

  /**
   * Returns a vCPU: a parked one reset to the state of a new vCPU, or else a new one, booted, with
   * its thread started. `onExit` runs when a pending run has finished.
   */
  createVcpu(vm: VmHandle, onExit: () => void): VcpuHandle;
  /**
   * Ends a run in progress and parks the vCPU, its thread and descriptor in the VM for the next
   * createVcpu, because KVM frees no vCPU before the VM is closed. onExit is not called afterwards.
   */
  releaseVcpu(vcpu: VcpuHandle): void;
  /**
   * Loads `registers` (platform-api's Registers layout) and runs the application in `as`, spinning up
   * to `spinNs` for the exit. Returns the exit vector, after storing the registers back, or
   * RUN_PENDING. `asId` identifies the address space for as long as the platform lives.
   */
  run(vcpu: VcpuHandle, as: AddressSpaceHandle, asId: number, registers: ArrayBuffer, spinNs: number): number;
  /** Collects a pending run after `onExit`: stores the registers back and returns the exit vector. */
  finish(vcpu: VcpuHandle, registers: ArrayBuffer): number;
  /** Makes the current or next run return EXIT_INTERRUPTED. */
  interrupt(vcpu: VcpuHandle): void;
  /**
   * Clears an interrupt that arrived after the last run had already ended, and returns whether
   * there was one. Call it between runs only.
   */
  takeInterrupt(vcpu: VcpuHandle): boolean;
  /** How many vCPUs the VM can have at once: KVM_CAP_MAX_VCPUS, capped by the guest kernel's vCPU blocks. */
  maxVcpus(vm: VmHandle): number;
  /** Stores the last exception's error code and CR2 into out[0] and out[1]. */
  exitInfo(vcpu: VcpuHandle, out: Float64Array): void;
}

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let addon: NativeAddon | undefined;

/** Loads the addon built by `npm run build` (node-gyp). Throws when it has not been built. */
export function loadNative(): NativeAddon {
  if (addon === undefined) {
    const require = createRequire(import.meta.url);
    const bindings = require('bindings') as (options: { bindings: string; module_root: string }) => NativeAddon;
    addon = bindings({ bindings: 'tsvisor_platform_kvm', module_root: packageRoot });
  }
  return addon;
}
