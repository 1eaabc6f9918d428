/** An address space of the systrap platform: a stub process, and the stub threads contexts run on. */
import type { AccessBits, AddressSpace, MappableFile } from '@tsvisor/platform-api';
import { Access } from '@tsvisor/platform-api';
import type { NativeAddressSpace } from './native.js';

const PAGE_SIZE = 4096;
const PROT_READ = 1;
const PROT_WRITE = 2;
const PROT_EXEC = 4;

/** Something that keeps a stub thread in an address space and must drop it when the space goes. */
export interface ThreadOwner {
  forgetAddressSpace(space: SystrapAddressSpace): void;
}

interface PlatformLink {
  readonly minUserAddress: number;
  readonly maxUserAddress: number;
  forgetAddressSpace(space: SystrapAddressSpace): void;
}

function protection(access: AccessBits): number {
  let prot = 0;
  if (access & Access.Read) prot |= PROT_READ;
  if (access & Access.Write) prot |= PROT_WRITE;
  if (access & Access.Execute) prot |= PROT_EXEC;
  return prot;
}

export class SystrapAddressSpace implements AddressSpace {
  /** Contexts that have a stub thread in this address space. */
  private readonly owners = new Set<ThreadOwner>();
  private released = false;

  constructor(
    readonly native: NativeAddressSpace,
    private readonly platform: PlatformLink,
  ) {}

  /** Host pid of the stub process, or -1 once released. */
  get pid(): number {
    return this.native.pid;
  }

  get isReleased(): boolean {
    return this.released;
  }

  mapFile(addr: number, file: MappableFile, offset: number, length: number, access: AccessBits): void {
    this.checkLive('mapFile');
    this.checkRange('mapFile', addr, length);
    if (!Number.isInteger(offset) || offset < 0 || offset % PAGE_SIZE !== 0) {
      throw new RangeError(`mapFile: offset ${offset} must be a non-negative multiple of ${PAGE_SIZE}`);
    }
    if (!Number.isInteger(file?.fd) || file.fd < 0) {
      throw new TypeError(`mapFile: file.fd must be an open descriptor, got ${String(file?.fd)}`);
    }
    this.native.mapFile(addr, file.fd, offset, length, protection(access));
  }

  unmap(addr: number, length: number): void {
    this.checkLive('unmap');
    if (length === 0) return;
    this.checkRange('unmap', addr, length);
    this.native.unmap(addr, length);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.native.release();
    for (const owner of this.owners) owner.forgetAddressSpace(this);
    this.owners.clear();
    this.platform.forgetAddressSpace(this);
  }

  /** Starts a stub thread for `owner` and returns its slot. */
  newThread(owner: ThreadOwner): number {
    this.checkLive('switch');
    const slot = this.native.newThread();
    this.owners.add(owner);
    return slot;
  }

  /** Ends the stub thread in `slot`, which `owner` no longer needs. */
  exitThread(owner: ThreadOwner, slot: number): void {
    if (this.released) return;
    this.native.exitThread(slot);
    this.owners.delete(owner);
  }

  private checkLive(method: string): void {
    if (this.released) throw new Error(`${method}: the address space was released`);
  }

  private checkRange(method: string, addr: number, length: number): void {
    if (!Number.isInteger(addr) || addr % PAGE_SIZE !== 0 || !Number.isInteger(length) || length <= 0 || length % PAGE_SIZE !== 0) {
      throw new RangeError(`${method}: address 0x${addr.toString(16)} and length ${length} must be positive multiples of ${PAGE_SIZE}`);
    }
    if (addr < this.platform.minUserAddress || addr + length > this.platform.maxUserAddress) {
      throw new RangeError(
        `${method}: [0x${addr.toString(16)}, 0x${(addr + length).toString(16)}) is outside the user range ` +
          `[0x${this.platform.minUserAddress.toString(16)}, 0x${this.platform.maxUserAddress.toString(16)})`,
      );
    }
  }
}
