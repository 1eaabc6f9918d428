/**
 * The memory manager of one process: its VMAs, its heap (brk), and which of its pages are committed,
 * that is backed by pages of the memory file and mapped into the platform's address space.
 *
 * Two range maps describe the process. `vmas` records what the program mapped and with which
 * protection. `committed` records which pages of those VMAs have memory-file pages behind them, and
 * at which file offset. Small mappings are committed when they are created. Large ones (above
 * EAGER_COMMIT_LIMIT) and PROT_NONE reservations are committed a window at a time, when the program
 * faults on them or a system call copies to or from them. So reserving 64 GiB costs nothing.
 * Moving a mapping (mremap) moves its committed entries: the memory-file pages stay where they are.
 */
import createDebug from 'debug';
import { Access, type AddressSpace } from '@tsvisor/platform-api';
import { Errno, fail } from '../errno.js';
import { PAGE_SIZE, type MemoryFile } from '../memory/memory-file.js';
import { MremapFlag, PROT_ACCESS_MASK, Prot } from './flags.js';
import { RangeMap, type Range } from './range-map.js';

const log = createDebug('tsvisor:sentry:mm');

/** Mappings up to this size are committed at once; larger ones on first touch. */
export const EAGER_COMMIT_LIMIT = 16 * 1024 * 1024;

/** A fault on an uncommitted page commits the aligned window of this size around it. */
const FAULT_COMMIT_WINDOW = 1024 * 1024;

export interface Vma extends Range {
  /** PROT_READ, PROT_WRITE and PROT_EXEC bits. */
  prot: number;
  /** MAP_SHARED. Without fork, shared anonymous memory behaves like private memory. */
  shared: boolean;
  /** Name shown in /proc/self/maps: a path, "[heap]", "[stack]", or "" for anonymous memory. */
  name: string;
  /** MAP_GROWSDOWN or the main stack: a fault just below the VMA extends it downwards. */
  growsDown: boolean;
}

/** Pages of [start, end) are backed by the memory file from byte `offset` on. */
interface Committed extends Range {
  offset: number;
}

export interface MemoryLayout {
  /** Lowest mappable address. */
  readonly minAddress: number;
  /** First address above user memory. */
  readonly maxAddress: number;
  /** mmap without a hint allocates downwards from here. */
  readonly mmapTop: number;
}

export interface MapOptions {
  shared?: boolean;
  name?: string;
  /** Commit every page now, whatever the size (MAP_POPULATE, loader segments). */
  populate?: boolean;
  growsDown?: boolean;
}

export function pageDown(addr: number): number {
  return addr - (addr % PAGE_SIZE);
}

export function pageUp(addr: number): number {
  return Math.ceil(addr / PAGE_SIZE) * PAGE_SIZE;
}

function readable(prot: number): boolean {
  // On x86-64 every accessible page is readable: PROT_WRITE and PROT_EXEC imply PROT_READ.
  return (prot & PROT_ACCESS_MASK) !== 0;
}

function permits(prot: number, access: number): boolean {
  if ((access & Access.Write) !== 0 && (prot & Prot.WRITE) === 0) return false;
  if ((access & Access.Execute) !== 0 && (prot & Prot.EXEC) === 0) return false;
  return readable(prot);
}

export class MemoryManager {
  readonly vmas = new RangeMap<Vma>((vma, start, end) => ({ ...vma, start, end }));
  private readonly committed = new RangeMap<Committed>((piece, start, end) => ({
    start,
    end,
    offset: piece.offset + (start - piece.start),
  }));

  /** Start of the heap: the page after the executable's last segment. */
  brkStart = 0;
  /** Current program break, as brk(0) returns it. */
  brkEnd = 0;

  constructor(
    readonly memoryFile: MemoryFile,
    readonly addressSpace: AddressSpace,
    readonly layout: MemoryLayout,
  ) {}

  /** Sets the heap to start (empty) at `addr`, rounded up to a page. */
  setBrkStart(addr: number): void {
    this.brkStart = pageUp(addr);
    this.brkEnd = this.brkStart;
  }

  /** Returns whether [start, start + length) lies inside the user address range. */
  inUserRange(start: number, length: number): boolean {
    return start >= this.layout.minAddress && length >= 0 && start + length <= this.layout.maxAddress;
  }

  /**
   * Finds a free range of `length` bytes, at `hint` when that range is free, otherwise the highest
   * free range below `layout.mmapTop`. Returns -1 when there is none.
   */
  findFree(length: number, hint = 0): number {
    if (hint !== 0) {
      const start = pageDown(hint);
      if (this.inUserRange(start, length) && this.vmas.isFree(start, start + length)) return start;
    }

    const items = this.vmas.items;
    let ceiling = this.layout.mmapTop;
    let index = this.vmas.lowerBound(ceiling);
    if (index < items.length && items[index].start < ceiling) ceiling = items[index].start;
    for (index--; index >= 0; index--) {
      if (ceiling - items[index].end >= length) return ceiling - length;
      ceiling = Math.min(ceiling, items[index].start);
    }
    return ceiling - this.layout.minAddress >= length ? ceiling - length : -1;
  }

  /**
   * Creates a VMA of zero-filled memory at [start, start + length), which must be page-aligned and
   * free (the mmap handler unmaps what MAP_FIXED replaces first).
   */
  mapAnonymous(start: number, length: number, prot: number, options: MapOptions = {}): void {
    const end = start + length;
    this.vmas.insert({
      start,
      end,
      prot: prot & PROT_ACCESS_MASK,
      shared: options.shared ?? false,
      name: options.name ?? '',
      growsDown: options.growsDown ?? false,
    });
    if (options.populate || (readable(prot) && length <= EAGER_COMMIT_LIMIT)) this.commit(start, end);
    this.coalesce(start, end);
  }

  /** Removes every mapping in [start, end) (page-aligned) and frees its pages. */
  unmap(start: number, end: number): void {
    const removed = this.vmas.remove(start, end);
    if (removed.length === 0) return;
    this.addressSpace.unmap(start, end - start);
    for (const piece of this.committed.remove(start, end)) {
      this.memoryFile.decRef(piece.offset, piece.end - piece.start);
    }
  }

  /** mprotect on page-aligned [start, end). Throws ENOMEM when part of the range is not mapped. */
  protect(start: number, end: number, prot: number): void {
    if (!this.isFullyMapped(start, end)) fail(Errno.ENOMEM);
    this.vmas.splitAt(start);
    this.vmas.splitAt(end);
    for (const vma of this.vmas.overlapping(start, end)) vma.prot = prot & PROT_ACCESS_MASK;
    this.syncMappings(start, end);
    if (readable(prot) && end - start <= EAGER_COMMIT_LIMIT) this.commit(start, end);
    this.coalesce(start, end);
  }

  /**
   * mremap: resizes or moves the mapping at [oldStart, oldStart + oldLength). Returns the new
   * address. `newAddress` is used with MREMAP_FIXED only.
   */
  remap(oldStart: number, oldLength: number, newLength: number, flags: number, newAddress: number): number {
    const oldEnd = oldStart + oldLength;
    const vma = this.vmas.find(oldStart);
    if (vma === undefined || oldEnd > vma.end) fail(Errno.EFAULT);

    if ((flags & MremapFlag.FIXED) !== 0) {
      if (newAddress % PAGE_SIZE !== 0 || !this.inUserRange(newAddress, newLength)) fail(Errno.EINVAL);
      if (newAddress < oldEnd && oldStart < newAddress + newLength) fail(Errno.EINVAL);
      this.unmap(newAddress, newAddress + newLength);
      const kept = Math.min(oldLength, newLength);
      this.move(oldStart, oldStart + kept, newAddress);
      this.unmap(oldStart, oldEnd);
      if (newLength > kept) this.extend(newAddress + kept, newAddress + newLength, vma);
      return newAddress;
    }

    if (newLength <= oldLength) {
      this.unmap(oldStart + newLength, oldEnd);
      return oldStart;
    }

    const growthEnd = oldStart + newLength;
    if (vma.end === oldEnd && this.inUserRange(oldStart, newLength) && this.vmas.isFree(oldEnd, growthEnd)) {
      this.extend(oldEnd, growthEnd, vma);
      return oldStart;
    }

    if ((flags & MremapFlag.MAYMOVE) === 0) fail(Errno.ENOMEM);
    const target = this.findFree(newLength);
    if (target < 0) fail(Errno.ENOMEM);
    this.move(oldStart, oldEnd, target);
    this.extend(target + oldLength, target + newLength, vma);
    return target;
  }

  /** brk: moves the program break and returns the new one, or the old one when it cannot. */
  brk(addr: number): number {
    if (addr < this.brkStart) return this.brkEnd;

    const oldTop = pageUp(this.brkEnd);
    const newTop = pageUp(addr);
    if (newTop > oldTop) {
      if (!this.inUserRange(oldTop, newTop - oldTop) || !this.vmas.isFree(oldTop, newTop)) return this.brkEnd;
      this.mapAnonymous(oldTop, newTop - oldTop, Prot.READ | Prot.WRITE, { name: '[heap]' });
    } else if (newTop < oldTop) {
      this.unmap(newTop, oldTop);
    }
    this.brkEnd = addr;
    return addr;
  }

  /**
   * Drops the pages of [start, end) (page-aligned, mapped) so that they read as zeros again on the
   * next access, as madvise(MADV_DONTNEED) does for private anonymous memory.
   */
  discard(start: number, end: number): void {
    if (!this.isFullyMapped(start, end)) fail(Errno.ENOMEM);
    const pieces = this.committed.remove(start, end);
    if (pieces.length === 0) return;
    this.addressSpace.unmap(start, end - start);
    for (const piece of pieces) this.memoryFile.decRef(piece.offset, piece.end - piece.start);
  }

  /** Returns whether every page of [start, end) belongs to some VMA. */
  isFullyMapped(start: number, end: number): boolean {
    let cursor = start;
    for (const vma of this.vmas.overlapping(start, end)) {
      if (vma.start > cursor) return false;
      cursor = vma.end;
    }
    return cursor >= end;
  }

  /**
   * Resolves a fault the platform reported: when the address lies in a VMA that permits the access
   * and its page is not committed yet, commits the window around it and returns true. Returns false
   * for a real access violation, which the caller turns into SIGSEGV.
   */
  handleFault(addr: number, access: number): boolean {
    const vma = this.vmas.find(addr);
    if (vma === undefined || !permits(vma.prot, access)) return false;
    if (this.committed.find(addr) !== undefined) return false;

    const windowStart = Math.max(vma.start, addr - (addr % FAULT_COMMIT_WINDOW));
    const windowEnd = Math.min(vma.end, windowStart + FAULT_COMMIT_WINDOW);
    if (log.enabled) log('fault at 0x%s (access %d): committing [0x%s, 0x%s)', addr.toString(16), access, windowStart.toString(16), windowEnd.toString(16));
    this.commit(windowStart, windowEnd);
    return true;
  }

  /** Copies `length` bytes of application memory at `addr` into a new Buffer. Throws EFAULT. */
  copyIn(addr: number, length: number): Buffer {
    const data = Buffer.allocUnsafe(length);
    this.copyInto(addr, data);
    return data;
  }

  /** Copies application memory at `addr` into `dst`, filling it. Throws EFAULT. */
  copyInto(addr: number, dst: Uint8Array): void {
    const offset = this.fileOffset(addr, dst.length, Prot.READ);
    if (offset >= 0) {
      this.memoryFile.read(offset, dst);
      return;
    }
    let done = 0;
    this.walk(addr, dst.length, Prot.READ, false, (view) => {
      dst.set(view, done);
      done += view.length;
    });
  }

  /** Copies `data` to application memory at `addr`. Throws EFAULT. */
  copyOut(addr: number, data: Uint8Array): void {
    const offset = this.fileOffset(addr, data.length, Prot.WRITE);
    if (offset >= 0) {
      this.memoryFile.write(offset, data);
      return;
    }
    let done = 0;
    this.walk(addr, data.length, Prot.WRITE, false, (view) => {
      view.set(data.subarray(done, done + view.length));
      done += view.length;
    });
  }

  /** Writes `data` at `addr` whatever the protection, as the kernel does when it loads an image. */
  poke(addr: number, data: Uint8Array): void {
    let done = 0;
    this.walk(addr, data.length, 0, true, (view) => {
      view.set(data.subarray(done, done + view.length));
      done += view.length;
    });
  }

  /**
   * Calls `visit` with views of the memory file covering [addr, addr + length) in order, whatever
   * the protection, committing pages as needed. For filling mappings from files.
   */
  views(addr: number, length: number, visit: (view: Uint8Array) => void): void {
    this.walk(addr, length, 0, true, visit);
  }

  /**
   * Reads a NUL-terminated string of at most `max` bytes (the NUL included) at `addr`, as latin1
   * (one character per byte), the form the VFS uses for path names so that any byte survives.
   * Throws ENAMETOOLONG when there is no NUL within `max` bytes, EFAULT when the memory is not readable.
   */
  readCString(addr: number, max = 4096): string {
    const parts: Uint8Array[] = [];
    let total = 0;
    let cursor = addr;
    while (total < max) {
      const chunk = Math.min(PAGE_SIZE - (cursor % PAGE_SIZE), max - total);
      let found = -1;
      this.walk(cursor, chunk, Prot.READ, false, (view) => {
        if (found >= 0) return;
        const nul = view.indexOf(0);
        if (nul >= 0) {
          found = nul;
          parts.push(view.subarray(0, nul));
        } else {
          parts.push(view);
        }
      });
      if (found >= 0) return this.decode(parts);
      total += chunk;
      cursor += chunk;
    }
    fail(Errno.ENAMETOOLONG);
  }

  /** Frees every mapping. The address space itself belongs to the caller. */
  release(): void {
    for (const piece of this.committed.items) this.memoryFile.decRef(piece.offset, piece.end - piece.start);
    this.committed.items.length = 0;
    this.vmas.items.length = 0;
  }

  private decode(parts: Uint8Array[]): string {
    return Buffer.concat(parts).toString('latin1');
  }

  /**
   * Returns the memory-file offset of [addr, addr + length) when the range is committed
   * contiguously inside one VMA that permits `need`, and -1 otherwise (then `walk` decides).
   * This is the allocation-free path for system call buffers.
   */
  private fileOffset(addr: number, length: number, need: number): number {
    const vma = this.vmas.find(addr);
    if (vma === undefined || addr + length > vma.end || !permits(vma.prot, need)) return -1;
    const piece = this.committed.find(addr);
    if (piece === undefined || addr + length > piece.end) return -1;
    return piece.offset + (addr - piece.start);
  }

  /**
   * Visits the memory-file views behind [addr, addr + length). Unless `force` is set, every page
   * must lie in a VMA whose protection includes `need` (Prot.READ: any access), or EFAULT is thrown.
   */
  private walk(addr: number, length: number, need: number, force: boolean, visit: (view: Uint8Array) => void): void {
    if (length === 0) return;
    if (!(addr >= 0) || !this.inUserRange(addr, length)) fail(Errno.EFAULT);
    const end = addr + length;

    // Fast path: one committed piece inside one VMA, the common case for system call buffers.
    const vma = this.vmas.find(addr);
    const piece = this.committed.find(addr);
    if (vma !== undefined && piece !== undefined && end <= vma.end && end <= piece.end && (force || permits(vma.prot, need))) {
      visit(this.memoryFile.view(piece.offset + (addr - piece.start), length));
      return;
    }

    if (!this.isFullyMapped(addr, end)) fail(Errno.EFAULT);
    if (!force) {
      for (const covering of this.vmas.overlapping(addr, end)) {
        if (!permits(covering.prot, need)) fail(Errno.EFAULT);
      }
    }
    this.commit(pageDown(addr), pageUp(end));
    for (const covering of this.committed.overlapping(addr, end)) {
      const from = Math.max(addr, covering.start);
      const to = Math.min(end, covering.end);
      visit(this.memoryFile.view(covering.offset + (from - covering.start), to - from));
    }
  }

  /** Backs every uncommitted page of [start, end) with new memory-file pages and maps them. */
  private commit(start: number, end: number): void {
    let cursor = start;
    for (const piece of [...this.committed.overlapping(start, end), undefined]) {
      const gapEnd = piece === undefined ? end : Math.min(piece.start, end);
      while (cursor < gapEnd) {
        const length = Math.min(gapEnd - cursor, this.memoryFile.maxRunPages * PAGE_SIZE);
        const offset = this.memoryFile.allocate(length / PAGE_SIZE);
        this.committed.insert({ start: cursor, end: cursor + length, offset });
        this.syncMappings(cursor, cursor + length);
        cursor += length;
      }
      if (piece !== undefined) cursor = Math.max(cursor, piece.end);
    }
    this.committed.coalesce(start, end, (left, right) => left.offset + (left.end - left.start) === right.offset);
  }

  /** Makes the platform's mappings of [start, end) match the committed pages and VMA protections. */
  private syncMappings(start: number, end: number): void {
    for (const piece of this.committed.overlapping(start, end)) {
      for (const vma of this.vmas.overlapping(Math.max(start, piece.start), Math.min(end, piece.end))) {
        const from = Math.max(start, piece.start, vma.start);
        const to = Math.min(end, piece.end, vma.end);
        if (vma.prot === Prot.NONE) {
          this.addressSpace.unmap(from, to - from);
        } else {
          this.addressSpace.mapFile(from, this.memoryFile, piece.offset + (from - piece.start), to - from, vma.prot);
        }
      }
    }
  }

  /** Moves the VMAs and committed pages of [start, end) to `target`, which must be free. */
  private move(start: number, end: number, target: number): void {
    const delta = target - start;
    const vmas = this.vmas.remove(start, end);
    const pieces = this.committed.remove(start, end);
    this.addressSpace.unmap(start, end - start);
    for (const vma of vmas) this.vmas.insert({ ...vma, start: vma.start + delta, end: vma.end + delta });
    for (const piece of pieces) this.committed.insert({ ...piece, start: piece.start + delta, end: piece.end + delta });
    this.syncMappings(target, target + (end - start));
    this.coalesce(target, target + (end - start));
  }

  /**
   * Grows a mapping into the free range [start, end) with the attributes of `like`.
   * NOTE: growing a file mapping adds zero-filled pages, not the bytes that follow in the file.
   */
  private extend(start: number, end: number, like: Vma): void {
    this.mapAnonymous(start, end - start, like.prot, { shared: like.shared, name: like.name });
  }

  private coalesce(start: number, end: number): void {
    this.vmas.coalesce(start, end, (left, right) =>
      left.prot === right.prot && left.shared === right.shared && left.name === right.name);
  }
}
