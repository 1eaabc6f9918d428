/** An address space of the ptrace platform: one stub process. */
import type { AccessBits, AddressSpace, MappableFile } from '@tsvisor/platform-api';
import createDebug from 'debug';
import type { NativeAddon } from './native.js';
import { RangeMap } from './range-map.js';

const log = createDebug('tsvisor:platform:ptrace');
const PAGE_SIZE = 4096;

/** The platform an address space belongs to. */
export interface AddressSpaceOwner {
  readonly minUserAddress: number;
  readonly maxUserAddress: number;
  forgetAddressSpace(space: PtraceAddressSpace): void;
}

/** A context with a thread in an address space, notified when the address space is released. */
export interface ThreadHolder {
  forgetAddressSpace(space: PtraceAddressSpace): void;
}

function checkPageMultiple(method: string, name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value % PAGE_SIZE !== 0) {
    throw new RangeError(`${method}: ${name} must be a non-negative multiple of ${PAGE_SIZE}, got ${value}`);
  }
}

export class PtraceAddressSpace implements AddressSpace {
  readonly pid: number;
  /** Access bits of every mapped range, for fault classification. */
  readonly mappings = new RangeMap();
  released = false;
  private readonly holders = new Set<ThreadHolder>();

  constructor(
    private readonly native: NativeAddon,
    private readonly owner: AddressSpaceOwner,
  ) {
    this.pid = native.createStub();
    if (log.enabled) log('address space: started stub process %d', this.pid);
  }

  mapFile(addr: number, file: MappableFile, offset: number, length: number, access: AccessBits): void {
    this.checkRange('mapFile', addr, length);
    checkPageMultiple('mapFile', 'offset', offset);
    if (!Number.isInteger(file?.fd) || file.fd < 0) {
      throw new TypeError(`mapFile: file.fd must be an open descriptor, got ${String(file?.fd)}`);
    }
    if (!Number.isInteger(access) || access < 0 || access > 7) {
      throw new RangeError(`mapFile: access must combine Access.Read, Write and Execute (0 to 7), got ${access}`);
    }
    if (length === 0) return;

    // Access bits have the values of PROT_READ, PROT_WRITE and PROT_EXEC.
    this.native.stubMapFile(this.pid, addr, file.fd, offset, length, access);
    this.mappings.set(addr, addr + length, access);
  }

  unmap(addr: number, length: number): void {
    this.checkRange('unmap', addr, length);
    if (length === 0) return;
    this.native.stubUnmap(this.pid, addr, length);
    this.mappings.remove(addr, addr + length);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.native.killStub(this.pid);
    for (const holder of this.holders) holder.forgetAddressSpace(this);
    this.holders.clear();
    this.owner.forgetAddressSpace(this);
    if (log.enabled) log('address space: killed stub process %d', this.pid);
  }

  /** Creates a stopped stub thread for `holder` to run application code in. */
  cloneThread(holder: ThreadHolder): number {
    const tid = this.native.stubCloneThread(this.pid);
    this.holders.add(holder);
    return tid;
  }

  /** Ends a thread made by cloneThread; it must not be inside a switch. */
  exitThread(holder: ThreadHolder, tid: number): void {
    this.holders.delete(holder);
    if (!this.released) this.native.stubExitThread(this.pid, tid);
  }

  private checkRange(method: string, addr: number, length: number): void {
    if (this.released) throw new Error(`${method}: the address space (stub process ${this.pid}) has been released`);
    checkPageMultiple(method, 'addr', addr);
    checkPageMultiple(method, 'length', length);
    if (addr < this.owner.minUserAddress || addr + length > this.owner.maxUserAddress) {
      throw new RangeError(
        `${method}: [0x${addr.toString(16)}, 0x${(addr + length).toString(16)}) lies outside the user range ` +
          `[0x${this.owner.minUserAddress.toString(16)}, 0x${this.owner.maxUserAddress.toString(16)})`,
      );
    }
  }
}
