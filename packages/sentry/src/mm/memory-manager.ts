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
 *
 * fork() gives the child the same committed pages with one more reference each. A private
 * writable page whose reference count is above one is mapped without PROT_WRITE, so the first
 * write faults and copyOnWrite() gives the writer its own copy. The sentry's own writes (copyOut)
 * break the sharing the same way. The child's address space starts empty: its pages are mapped a
 * window at a time as it faults on them, so a child that soon calls execve maps almost nothing.
 * Shared anonymous memory (MAP_SHARED) is committed when it is mapped, because pages committed
 * later in one process would not reach the others.
 */
import createDebug from 'debug';
import { Access, type AddressSpace } from '@tsvisor/platform-api';
import { Errno, fail } from '../errno.js';
import { PAGE_SIZE, type MemoryFile } from '../memory/memory-file.js';
import { MremapFlag, PROT_ACCESS_MASK, Prot } from './flags.js';
import { STACK_GUARD_GAP, type MemoryLayout } from './layout.js';
import { RangeMap, type Range } from './range-map.js';

const log = createDebug('tsvisor:sentry:mm');

/** Mappings up to this size are committed at once; larger ones on first touch. */
export const EAGER_COMMIT_LIMIT = 16 * 1024 * 1024;

/** A fault on an uncommitted page commits the aligned window of this size around it. */
const FAULT_COMMIT_WINDOW = 1024 * 1024;

export type { MemoryLayout } from './layout.js';

export interface Vma extends Range {
  /** PROT_READ, PROT_WRITE and PROT_EXEC bits. */
  prot: number;
  /** MAP_SHARED. Without fork, shared anonymous memory behaves like private memory. */
  shared: boolean;
  /** Name shown in /proc/self/maps: a path, "[heap]", "[stack]", or "" for anonymous memory. */
  name: string;
  /** MAP_GROWSDOWN or the main stack: a fault just below the VMA extends it downwards. */
  growsDown: boolean;
  /** For file mappings, the file offset at `start`; 0 for anonymous memory. */
  offset: number;
  /** Device and inode of the mapped file, for /proc/PID/maps; 0 for anonymous memory. */
  dev: bigint;
  ino: bigint;
}

/** The file behind a file mapping, as /proc/PID/maps shows it. */
export interface MappedFile {
  readonly dev: bigint;
  readonly ino: bigint;
  /** File offset of the mapping's first byte. */
  readonly offset: number;
}

/** Pages of [start, end) are backed by the memory file from byte `offset` on. */
interface Committed extends Range {
  offset: number;
}

export interface MapOptions {
  shared?: boolean;
  name?: string;
  /** Commit every page now, whatever the size (MAP_POPULATE, loader segments). */
  populate?: boolean;
  growsDown?: boolean;
  file?: MappedFile;
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

function ignoreView(): void {}

function sliceVma(vma: Vma, start: number, end: number): Vma {
  const offset = vma.ino === 0n ? 0 : vma.offset + (start - vma.start);
  return { ...vma, start, end, offset };
}

function sameVma(left: Vma, right: Vma): boolean {
  if (left.prot !== right.prot || left.shared !== right.shared || left.name !== right.name) return false;
  if (left.growsDown !== right.growsDown || left.dev !== right.dev || left.ino !== right.ino) return false;
  return left.ino === 0n || left.offset + (left.end - left.start) === right.offset;
}

/**
 * The last fault a thread had resolved by mapping pages, and the mapping generation after it. The
 * same thread faulting the same way again with no mapping change in between means the platform
 * cannot resolve it, and handleFault reports a violation instead of looping forever.
 */
export interface FaultRecord {
  mm: MemoryManager | undefined;
  page: number;
  access: number;
  generation: number;
}

export class MemoryManager {
  readonly vmas = new RangeMap<Vma>(sliceVma);
  private readonly committed = new RangeMap<Committed>((piece, start, end) => ({
    start,
    end,
    offset: piece.offset + (start - piece.start),
  }));

  /** Start of the heap: the page after the executable's last segment. */
  brkStart = 0;
  /** Current program break, as brk(0) returns it. */
  brkEnd = 0;
  /** Where execve placed the argument and environment strings, for /proc/PID/cmdline and environ. */
  argStart = 0;
  argEnd = 0;
  envStart = 0;
  envEnd = 0;

  /** The fault record of callers that do not keep their own (see FaultRecord). */
  private readonly ownFaultRecord: FaultRecord = { mm: undefined, page: -1, access: -1, generation: -1 };
  /** Counts changes to the platform's mappings. */
  private mappingGeneration = 0;

  constructor(
    readonly memoryFile: MemoryFile,
    readonly addressSpace: AddressSpace,
    /** Replaced by execve, before it maps anything, with the layout for the new stack limit. */
    public layout: MemoryLayout,
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
    const shared = options.shared ?? false;
    this.vmas.insert({
      start,
      end,
      prot: prot & PROT_ACCESS_MASK,
      shared,
      name: options.name ?? '',
      growsDown: options.growsDown ?? false,
      offset: options.file?.offset ?? 0,
      dev: options.file?.dev ?? 0n,
      ino: options.file?.ino ?? 0n,
    });
    // NOTE: shared anonymous memory is committed in full here, whatever its size, so a large
    // MAP_SHARED reservation costs its whole size up front.
    if (options.populate || shared || (readable(prot) && length <= EAGER_COMMIT_LIMIT)) this.commit(start, end);
    this.coalesce(start, end);
  }

  /** Removes every mapping in [start, end) (page-aligned) and frees its pages. */
  unmap(start: number, end: number): void {
    const removed = this.vmas.remove(start, end);
    if (removed.length === 0) return;
    this.unmapPlatform(start, end);
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
    this.mapCommitted(start, end);
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
   * Drops the private pages of [start, end) (page-aligned, mapped) so that they read as zeros again
   * on the next access, as madvise(MADV_DONTNEED) does for private anonymous memory. Shared memory
   * keeps its contents, as on Linux, where only the page table entries go.
   * NOTE: Linux refills dropped pages of a private file mapping from the file; here they read as zeros.
   */
  discard(start: number, end: number): void {
    if (!this.isFullyMapped(start, end)) fail(Errno.ENOMEM);
    for (const vma of this.vmas.overlapping(start, end)) {
      if (vma.shared) continue;
      const from = Math.max(start, vma.start);
      const to = Math.min(end, vma.end);
      const pieces = this.committed.remove(from, to);
      if (pieces.length === 0) continue;
      this.unmapPlatform(from, to);
      for (const piece of pieces) this.memoryFile.decRef(piece.offset, piece.end - piece.start);
    }
  }

  /**
   * Commits every page of [start, end) (page-aligned) and makes the host back each one with
   * memory, as MAP_POPULATE and mlock fault pages in. Throws ENOMEM when part is not mapped.
   */
  populate(start: number, end: number): void {
    if (!this.isFullyMapped(start, end)) fail(Errno.ENOMEM);
    this.commit(start, end);
    for (const piece of this.committed.overlapping(start, end)) {
      const from = Math.max(start, piece.start);
      this.memoryFile.prefault(piece.offset + (from - piece.start), Math.min(end, piece.end) - from);
    }
  }

  /**
   * Fills `out` with one byte per page of [start, end), 1 when the page is in host memory, as
   * mincore does. A page committed with its fault window but never touched reports 0, because the
   * host allocates memory-file pages on first write. Throws ENOMEM when part of the range is not mapped.
   */
  residency(start: number, end: number, out: Uint8Array): void {
    if (!this.isFullyMapped(start, end)) fail(Errno.ENOMEM);
    out.fill(0);
    for (const piece of this.committed.overlapping(start, end)) {
      const from = Math.max(start, piece.start);
      const to = Math.min(end, piece.end);
      const first = (from - start) / PAGE_SIZE;
      this.memoryFile.resident(piece.offset + (from - piece.start), to - from, out.subarray(first, first + (to - from) / PAGE_SIZE));
    }
  }

  /**
   * Returns a copy of this memory manager for a child process, with every committed page shared
   * copy-on-write. `addressSpace` is the child's new, empty platform address space.
   */
  fork(addressSpace: AddressSpace): MemoryManager {
    const child = new MemoryManager(this.memoryFile, addressSpace, this.layout);
    for (const vma of this.vmas.items) child.vmas.items.push({ ...vma });
    for (const piece of this.committed.items) {
      child.committed.items.push({ ...piece });
      this.memoryFile.incRef(piece.offset, piece.end - piece.start);
    }
    child.brkStart = this.brkStart;
    child.brkEnd = this.brkEnd;
    child.argStart = this.argStart;
    child.argEnd = this.argEnd;
    child.envStart = this.envStart;
    child.envEnd = this.envEnd;

    // The parent's private writable pages are shared now, so its own writes must fault too.
    for (const vma of this.vmas.items) {
      if (!vma.shared && (vma.prot & Prot.WRITE) !== 0) this.mapCommitted(vma.start, vma.end);
    }
    return child;
  }

  /** Bytes of address space that VMAs cover, as VmSize counts them. */
  mappedBytes(): number {
    let total = 0;
    for (const vma of this.vmas.items) total += vma.end - vma.start;
    return total;
  }

  /** Bytes of committed pages, as VmRSS counts them. */
  residentBytes(): number {
    let total = 0;
    for (const piece of this.committed.items) total += piece.end - piece.start;
    return total;
  }

  /** Bytes of committed pages in [start, end). */
  residentBytesIn(start: number, end: number): number {
    let total = 0;
    for (const piece of this.committed.overlapping(start, end)) total += Math.min(end, piece.end) - Math.max(start, piece.start);
    return total;
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
   * Returns how many bytes from `addr`, at most `length`, lie in consecutive VMAs that permit
   * `access`. A system call that copies from or to a buffer transfers that prefix, as Linux does
   * when its copy stops at the first inaccessible page.
   * NOTE: a prefix that ends in the gap below a growing stack stops there, although a copy into
   * that gap would extend the stack.
   */
  accessibleLength(addr: number, length: number, access: number): number {
    if (length <= 0) return 0;
    const end = addr + length;
    const first = this.vmas.find(addr);
    if (first !== undefined && end <= first.end && permits(first.prot, access)) return length;
    if (!(addr >= 0) || !this.inUserRange(addr, 0)) return 0;

    let cursor = addr;
    for (const vma of this.vmas.overlapping(addr, end)) {
      if (vma.start > cursor || !permits(vma.prot, access)) break;
      cursor = Math.min(vma.end, end);
    }
    return cursor - addr;
  }

  /**
   * Resolves a fault the platform reported: when the address lies in a VMA that permits the access
   * and its page is not committed yet, commits the window around it and returns true. Returns false
   * for a real access violation, which the caller turns into SIGSEGV. `record` is the faulting
   * thread's own: threads that share this memory manager may fault on the same page at once, and
   * the later ones must not look like a fault the first one's mapping failed to resolve.
   */
  handleFault(addr: number, access: number, record: FaultRecord = this.ownFaultRecord): boolean {
    const vma = this.vmas.find(addr) ?? this.growDown(addr);
    if (vma === undefined || !permits(vma.prot, access)) return false;
    const page = pageDown(addr);
    if (record.mm === this && record.page === page && record.access === access && record.generation === this.mappingGeneration) {
      return false;
    }

    const windowStart = Math.max(vma.start, addr - (addr % FAULT_COMMIT_WINDOW));
    const windowEnd = Math.min(vma.end, windowStart + FAULT_COMMIT_WINDOW);
    if (this.committed.find(addr) === undefined) {
      if (log.enabled) log('fault at 0x%s (access %d): committing [0x%s, 0x%s)', addr.toString(16), access, windowStart.toString(16), windowEnd.toString(16));
      this.commit(windowStart, windowEnd);
    } else if ((access & Access.Write) !== 0 && !vma.shared && this.memoryFile.isShared(this.fileOffsetOf(page), PAGE_SIZE)) {
      if (log.enabled) log('write fault at 0x%s: copying the shared page', addr.toString(16));
      this.copyOnWrite(page, page + PAGE_SIZE);
    } else {
      // A committed page the platform has not mapped (yet) the way the VMA allows: a forked
      // child's first touch, or a write to a page whose other sharer has copied it already.
      this.mapCommitted(windowStart, windowEnd);
    }

    record.mm = this;
    record.page = page;
    record.access = access;
    record.generation = this.mappingGeneration;
    return true;
  }

  /**
   * Returns the memory-file offset of the byte at `addr` when it lies in a shared mapping
   * (MAP_SHARED), committing its page first, or -1 when it lies in a private mapping. Processes
   * that share the page see the same offset at whatever address they map it. Throws EFAULT when
   * `addr` is not mapped readable.
   */
  sharedFileOffset(addr: number): number {
    const vma = this.vmas.find(addr);
    if (vma === undefined || !readable(vma.prot)) fail(Errno.EFAULT);
    if (!vma.shared) return -1;
    this.walk(addr, 1, Prot.READ, false, false, ignoreView);
    return this.fileOffsetOf(pageDown(addr)) + (addr % PAGE_SIZE);
  }

  /**
   * Returns the memory-file offset of [addr, addr + length), which must lie inside one page, for
   * a write the sentry makes through the memory file itself, such as an atomic read-modify-write.
   * Commits the page and breaks its copy-on-write sharing first, as a write fault would. Throws
   * EFAULT when the range is not mapped writable.
   */
  writableFileOffset(addr: number, length: number): number {
    this.walk(addr, length, Prot.WRITE, false, true, ignoreView);
    return this.fileOffsetOf(pageDown(addr)) + (addr % PAGE_SIZE);
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
    this.walk(addr, dst.length, Prot.READ, false, false, (view) => {
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
    this.walk(addr, data.length, Prot.WRITE, false, true, (view) => {
      view.set(data.subarray(done, done + view.length));
      done += view.length;
    });
  }

  /** Writes `data` at `addr` whatever the protection, as the kernel does when it loads an image. */
  poke(addr: number, data: Uint8Array): void {
    let done = 0;
    this.walk(addr, data.length, 0, true, true, (view) => {
      view.set(data.subarray(done, done + view.length));
      done += view.length;
    });
  }

  /**
   * Calls `visit` with views of the memory file covering [addr, addr + length) in order, whatever
   * the protection, committing pages as needed. For filling mappings from files.
   */
  views(addr: number, length: number, visit: (view: Uint8Array) => void): void {
    this.walk(addr, length, 0, true, true, visit);
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
      this.walk(cursor, chunk, Prot.READ, false, false, (view) => {
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
   * A write to private pages still shared copy-on-write also returns -1.
   * This is the allocation-free path for system call buffers.
   */
  private fileOffset(addr: number, length: number, need: number): number {
    const vma = this.vmas.find(addr);
    if (vma === undefined || addr + length > vma.end || !permits(vma.prot, need)) return -1;
    const piece = this.committed.find(addr);
    if (piece === undefined || addr + length > piece.end) return -1;
    const offset = piece.offset + (addr - piece.start);
    if ((need & Prot.WRITE) !== 0 && !vma.shared && this.memoryFile.isShared(offset, length)) return -1;
    return offset;
  }

  /** Memory-file offset of the committed page at `page`. */
  private fileOffsetOf(page: number): number {
    const piece = this.committed.find(page);
    if (piece === undefined) throw new Error(`page 0x${page.toString(16)} is not committed`);
    return piece.offset + (page - piece.start);
  }

  /**
   * Visits the memory-file views behind [addr, addr + length). Unless `force` is set, every page
   * must lie in a VMA whose protection includes `need` (Prot.READ: any access), or EFAULT is thrown.
   * When `write` is set, private pages shared copy-on-write are copied first.
   */
  private walk(addr: number, length: number, need: number, force: boolean, write: boolean, visit: (view: Uint8Array) => void): void {
    if (length === 0) return;
    if (!(addr >= 0) || !this.inUserRange(addr, length)) fail(Errno.EFAULT);
    const end = addr + length;

    // Fast path: one committed piece inside one VMA, the common case for system call buffers.
    const vma = this.vmas.find(addr);
    const piece = this.committed.find(addr);
    if (vma !== undefined && piece !== undefined && end <= vma.end && end <= piece.end && (force || permits(vma.prot, need))) {
      const offset = piece.offset + (addr - piece.start);
      if (!write || vma.shared || !this.memoryFile.isShared(offset, length)) {
        visit(this.memoryFile.view(offset, length));
        return;
      }
    }

    // As on Linux, a system call touching the gap below a growing stack extends the stack.
    if (!this.isFullyMapped(addr, end) && (this.growDown(addr) === undefined || !this.isFullyMapped(addr, end))) fail(Errno.EFAULT);
    if (!force) {
      for (const covering of this.vmas.overlapping(addr, end)) {
        if (!permits(covering.prot, need)) fail(Errno.EFAULT);
      }
    }
    this.commit(pageDown(addr), pageUp(end));
    if (write) this.copyOnWrite(pageDown(addr), pageUp(end));
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
        this.mapCommitted(cursor, cursor + length);
        cursor += length;
      }
      if (piece !== undefined) cursor = Math.max(cursor, piece.end);
    }
    this.committed.coalesce(start, end, (left, right) => left.offset + (left.end - left.start) === right.offset);
  }

  /**
   * Gives every private page of [start, end) still shared with another process its own copy,
   * and maps the copies with the VMA's full protection.
   */
  private copyOnWrite(start: number, end: number): void {
    for (const vma of this.vmas.overlapping(start, end)) {
      if (vma.shared) continue;
      const from = Math.max(start, vma.start);
      const to = Math.min(end, vma.end);
      for (const piece of this.committed.overlapping(from, to)) {
        // Collected first, because replacing pages splits `piece` in the range map.
        const runs: Array<[number, number]> = [];
        let page = Math.max(from, piece.start);
        const pieceEnd = Math.min(to, piece.end);
        while (page < pieceEnd) {
          if (!this.memoryFile.isShared(piece.offset + (page - piece.start), PAGE_SIZE)) {
            page += PAGE_SIZE;
            continue;
          }
          let runEnd = page + PAGE_SIZE;
          while (runEnd < pieceEnd && this.memoryFile.isShared(piece.offset + (runEnd - piece.start), PAGE_SIZE)) runEnd += PAGE_SIZE;
          runs.push([page, runEnd]);
          page = runEnd;
        }
        for (const [runStart, runEnd] of runs) this.copyRun(piece, runStart, runEnd);
      }
      this.mapCommitted(from, to);
    }
  }

  /** Replaces the shared pages [start, end) of `piece` with fresh copies, in runs the allocator can hand out. */
  private copyRun(piece: Committed, start: number, end: number): void {
    for (let cursor = start; cursor < end;) {
      const length = Math.min(end - cursor, this.memoryFile.maxRunPages * PAGE_SIZE);
      const oldOffset = piece.offset + (cursor - piece.start);
      const newOffset = this.memoryFile.allocate(length / PAGE_SIZE);
      this.memoryFile.write(newOffset, this.memoryFile.view(oldOffset, length));
      this.committed.remove(cursor, cursor + length);
      this.committed.insert({ start: cursor, end: cursor + length, offset: newOffset });
      this.memoryFile.decRef(oldOffset, length);
      cursor += length;
    }
  }

  /**
   * Makes the platform's mappings of [start, end) match the committed pages and VMA protections.
   * Private writable pages still shared with another process are mapped without PROT_WRITE.
   */
  private mapCommitted(start: number, end: number): void {
    this.mappingGeneration++;
    for (const piece of this.committed.overlapping(start, end)) {
      for (const vma of this.vmas.overlapping(Math.max(start, piece.start), Math.min(end, piece.end))) {
        const from = Math.max(start, piece.start, vma.start);
        const to = Math.min(end, piece.end, vma.end);
        if (vma.shared || (vma.prot & Prot.WRITE) === 0) {
          this.mapPiece(piece, from, to, vma.prot);
          continue;
        }
        let run = from;
        while (run < to) {
          const shared = this.memoryFile.isShared(piece.offset + (run - piece.start), PAGE_SIZE);
          let runEnd = run + PAGE_SIZE;
          while (runEnd < to && this.memoryFile.isShared(piece.offset + (runEnd - piece.start), PAGE_SIZE) === shared) runEnd += PAGE_SIZE;
          this.mapPiece(piece, run, runEnd, shared ? vma.prot & ~Prot.WRITE : vma.prot);
          run = runEnd;
        }
      }
    }
  }

  private mapPiece(piece: Committed, from: number, to: number, prot: number): void {
    if (prot === Prot.NONE) {
      this.addressSpace.unmap(from, to - from);
    } else {
      this.addressSpace.mapFile(from, this.memoryFile, piece.offset + (from - piece.start), to - from, prot);
    }
  }

  private unmapPlatform(start: number, end: number): void {
    this.mappingGeneration++;
    this.addressSpace.unmap(start, end - start);
  }

  /**
   * Extends a growing stack (MAP_GROWSDOWN, or the main stack) down to the page of `addr` when
   * `addr` lies in the gap below it, and returns the VMA now containing `addr`. The main stack
   * grows to at most layout.maxStackSize bytes, and no stack grows within STACK_GUARD_GAP of the
   * mapping below.
   * NOTE: Linux checks the current RLIMIT_STACK on every growth, but this uses the limit that was
   * in force at execve, so a setrlimit after execve does not change how far the stack can grow.
   */
  private growDown(addr: number): Vma | undefined {
    const index = this.vmas.lowerBound(addr);
    const above = this.vmas.items[index];
    if (above === undefined || !above.growsDown || addr >= above.start || addr < this.layout.minAddress) return undefined;
    const start = pageDown(addr);
    const below = this.vmas.items[index - 1];
    if (below !== undefined && below.end + STACK_GUARD_GAP > start) return undefined;
    if (above.name === '[stack]' && this.layout.stackTop - start > this.layout.maxStackSize) return undefined;

    this.vmas.insert({ ...above, start, end: above.start });
    this.coalesce(start, above.end);
    return this.vmas.find(addr);
  }

  /** Moves the VMAs and committed pages of [start, end) to `target`, which must be free. */
  private move(start: number, end: number, target: number): void {
    const delta = target - start;
    const vmas = this.vmas.remove(start, end);
    const pieces = this.committed.remove(start, end);
    this.unmapPlatform(start, end);
    for (const vma of vmas) this.vmas.insert({ ...vma, start: vma.start + delta, end: vma.end + delta });
    for (const piece of pieces) this.committed.insert({ ...piece, start: piece.start + delta, end: piece.end + delta });
    this.mapCommitted(target, target + (end - start));
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
    this.vmas.coalesce(start, end, sameVma);
  }
}
