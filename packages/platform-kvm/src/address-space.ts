/** An application address space: one set of guest page tables in the platform's VM. */
import type { AccessBits, AddressSpace, MappableFile } from '@tsvisor/platform-api';
import type { AddressSpaceHandle, NativeAddon } from './native.js';

export class KvmAddressSpace implements AddressSpace {
  private handle: AddressSpaceHandle | undefined;

  /**
   * @param id unique for the platform's life, so a vCPU can tell a new address space from a
   *   released one whose page-table root was reused
   */
  constructor(
    private readonly native: NativeAddon,
    handle: AddressSpaceHandle,
    readonly id: number,
    private readonly onRelease: (as: KvmAddressSpace) => void,
  ) {
    this.handle = handle;
  }

  /** The native handle. Throws when the address space was released. */
  get nativeHandle(): AddressSpaceHandle {
    if (this.handle === undefined) throw new Error('kvm: the address space was released');
    return this.handle;
  }

  mapFile(addr: number, file: MappableFile, offset: number, length: number, access: AccessBits): void {
    this.native.mapFile(this.nativeHandle, addr, file.fd, offset, length, access);
  }

  unmap(addr: number, length: number): void {
    this.native.unmap(this.nativeHandle, addr, length);
  }

  release(): void {
    if (this.handle === undefined) return;
    this.native.releaseAddressSpace(this.handle);
    this.handle = undefined;
    this.onRelease(this);
  }
}
