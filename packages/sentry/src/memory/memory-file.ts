/**
 * The memory file and its page allocator. All application memory lives in one memfd that the
 * sentry maps once (native/memory-file.cc); platforms map ranges of it into application address
 * spaces. Pages are handed out as contiguous runs and reference-counted, so that a later fork can
 * share pages copy-on-write: a page returns to the free list, and its memory to the host, only
 * when its last reference is dropped.
 *
 * A run never crosses a 1 GiB boundary, so every run is visible through one chunk ArrayBuffer.
 */
import type { MappableFile } from '@tsvisor/platform-api';
import { Errno, fail } from '../errno.js';
import { native, type AtomicOperation, type NativeMemoryFile } from '../native.js';

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
const CHUNK_SIZE = 2 ** 30;
const CHUNK_PAGES = CHUNK_SIZE / PAGE_SIZE;

/** The file grows in steps of this many bytes, so ftruncate is not called for every allocation. */
const GROW_STEP = 64 * 1024 * 1024;

/** Default reservation of sentry address space for the mapping; it costs no memory until used. */
export const DEFAULT_CAPACITY = 64 * CHUNK_SIZE;

/** A run of free pages: [start, start + count) in page numbers. */
interface FreeRun {
  start: number;
  count: number;
}

export class MemoryFile implements MappableFile {
  readonly fd: number;
  /** Largest run `allocate` hands out, in pages. */
  readonly maxRunPages = CHUNK_PAGES;

  private readonly file: NativeMemoryFile;
  private readonly chunks: Buffer[] = [];
  private readonly capacityPages: number;
  /** Current size of the memfd in bytes. */
  private size = 0;
  /** Pages at and above this number have never been allocated. */
  private top = 0;
  /** Free runs below `top`, sorted by start and never adjacent (adjacent runs are merged). */
  private readonly freeRuns: FreeRun[] = [];
  private refs = new Uint32Array(0);
  private closed = false;

  constructor(capacity = DEFAULT_CAPACITY) {
    this.file = new native.MemoryFile('tsvisor-memory', capacity);
    this.fd = this.file.fd;
    this.capacityPages = capacity / PAGE_SIZE;
  }

  /** Bytes currently allocated to the application, for sysinfo and tests. */
  get allocatedBytes(): number {
    let free = 0;
    for (const run of this.freeRuns) free += run.count;
    return (this.top - free) * PAGE_SIZE;
  }

  /**
   * Allocates `pages` contiguous zeroed pages with a reference count of one and returns the byte
   * offset of the first. Throws SysError(ENOMEM) when the file is full.
   */
  allocate(pages: number): number {
    if (pages <= 0 || pages > CHUNK_PAGES) throw new RangeError(`cannot allocate a run of ${pages} pages`);
    let start = this.takeFreeRun(pages);
    if (start < 0) start = this.takeFromTop(pages);
    for (let page = start; page < start + pages; page++) this.refs[page] = 1;
    return start * PAGE_SIZE;
  }

  /** Adds a reference to every page of [offset, offset + length). */
  incRef(offset: number, length: number): void {
    const first = offset / PAGE_SIZE;
    const end = first + length / PAGE_SIZE;
    for (let page = first; page < end; page++) this.refs[page]++;
  }

  /** Drops a reference to every page of [offset, offset + length), freeing pages that reach zero. */
  decRef(offset: number, length: number): void {
    const first = offset / PAGE_SIZE;
    const end = first + length / PAGE_SIZE;
    let runStart = -1;
    for (let page = first; page <= end; page++) {
      const freed = page < end && --this.refs[page] === 0;
      if (freed && runStart < 0) runStart = page;
      if (!freed && runStart >= 0) {
        this.release(runStart, page - runStart);
        runStart = -1;
      }
    }
  }

  /** Returns whether some page of [offset, offset + length) has more than one reference. */
  isShared(offset: number, length: number): boolean {
    const first = Math.floor(offset / PAGE_SIZE);
    const end = Math.ceil((offset + length) / PAGE_SIZE);
    for (let page = first; page < end; page++) {
      if (this.refs[page] > 1) return true;
    }
    return false;
  }

  /** Makes the host allocate memory for [offset, offset + length) now rather than on first write. */
  prefault(offset: number, length: number): void {
    this.file.prefault(offset, length);
  }

  /**
   * Fills `out` with one byte per page of [offset, offset + length), 1 when the host holds the page
   * in memory. Allocated pages that were never written are holes and report 0.
   */
  resident(offset: number, length: number, out: Uint8Array): void {
    this.file.resident(offset, length, out);
  }

  /** Reference count of the page containing `offset`. */
  refCount(offset: number): number {
    return this.refs[Math.floor(offset / PAGE_SIZE)] ?? 0;
  }

  /**
   * Returns a view of [offset, offset + length) of the file. The range must lie inside one
   * allocated run (runs never cross a chunk boundary). The view is valid until close().
   */
  view(offset: number, length: number): Uint8Array {
    const index = Math.floor(offset / CHUNK_SIZE);
    const start = offset - index * CHUNK_SIZE;
    return this.chunk(index).subarray(start, start + length);
  }

  /** Copies `src` to the file at `offset`, inside one run, without allocating. */
  write(offset: number, src: Uint8Array): void {
    const index = Math.floor(offset / CHUNK_SIZE);
    this.chunk(index).set(src, offset - index * CHUNK_SIZE);
  }

  /** Copies `dst.length` bytes at `offset`, inside one run, into `dst` without allocating. */
  read(offset: number, dst: Uint8Array): void {
    const index = Math.floor(offset / CHUNK_SIZE);
    const start = offset - index * CHUNK_SIZE;
    this.chunk(index).copy(dst, 0, start, start + dst.length);
  }

  /**
   * Applies `operation` to the 32-bit word at `offset` (4-byte aligned, in an allocated page) as
   * one atomic read-modify-write and returns its old value as a signed integer. Unlike a read then
   * a write, no store that an application thread makes to the word at the same time is lost.
   */
  atomicFetch(offset: number, operation: AtomicOperation, operand: number): number {
    return this.file.atomicFetch(offset, operation, operand);
  }

  private chunk(index: number): Buffer {
    let chunk = this.chunks[index];
    if (chunk === undefined) {
      if (this.closed) throw new Error('the memory file is closed');
      chunk = Buffer.from(this.file.chunk(index));
      this.chunks[index] = chunk;
    }
    return chunk;
  }

  /** Frees the host memfd and its mapping. Views obtained earlier become detached (zero length). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.chunks.length = 0;
    this.file.close();
  }

  private takeFreeRun(pages: number): number {
    for (let i = 0; i < this.freeRuns.length; i++) {
      const run = this.freeRuns[i];
      if (run.count < pages) continue;
      const start = run.start;
      run.start += pages;
      run.count -= pages;
      if (run.count === 0) this.freeRuns.splice(i, 1);
      return start;
    }
    return -1;
  }

  private takeFromTop(pages: number): number {
    let start = this.top;
    const chunkEnd = (Math.floor(start / CHUNK_PAGES) + 1) * CHUNK_PAGES;
    if (start + pages > chunkEnd) {
      this.addFreeRun(start, chunkEnd - start);
      start = chunkEnd;
    }
    if (start + pages > this.capacityPages) fail(Errno.ENOMEM);

    this.top = start + pages;
    const needed = this.top * PAGE_SIZE;
    if (needed > this.size) {
      const size = Math.min(Math.ceil(needed / GROW_STEP) * GROW_STEP, this.capacityPages * PAGE_SIZE);
      this.file.resize(size);
      this.size = size;
    }
    if (this.refs.length < this.top) {
      const refs = new Uint32Array(Math.min(Math.max(this.top, this.refs.length * 2), this.capacityPages));
      refs.set(this.refs);
      this.refs = refs;
    }
    return start;
  }

  private release(start: number, count: number): void {
    // Punching the hole returns the memory to the host and makes the pages read as zeros, which
    // is what the next allocation of them promises.
    this.file.decommit(start * PAGE_SIZE, count * PAGE_SIZE);
    this.addFreeRun(start, count);
  }

  private addFreeRun(start: number, count: number): void {
    if (count === 0) return;
    const runs = this.freeRuns;
    let i = 0;
    while (i < runs.length && runs[i].start < start) i++;
    const previous = runs[i - 1];
    const next = runs[i];
    if (previous !== undefined && previous.start + previous.count === start) {
      previous.count += count;
      if (next !== undefined && previous.start + previous.count === next.start) {
        previous.count += next.count;
        runs.splice(i, 1);
      }
    } else if (next !== undefined && start + count === next.start) {
      next.start = start;
      next.count += count;
    } else {
      runs.splice(i, 0, { start, count });
    }
  }
}
