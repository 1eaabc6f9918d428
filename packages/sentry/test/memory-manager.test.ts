/**
 * The memory manager and the memory file's page allocator, without a platform: a recording
 * address space replaces the platform and keeps, per page, the memory-file offset and access
 * it was given, so each test checks both what the program would see and what the sentry copies.
 */
import { Access, type AddressSpace, type MappableFile } from '@tsvisor/platform-api';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Errno, SysError } from '../src/errno.js';
import { MemoryFile, PAGE_SIZE } from '../src/memory/memory-file.js';
import { MremapFlag, Prot } from '../src/mm/flags.js';
import { EAGER_COMMIT_LIMIT, type FaultRecord, MemoryManager } from '../src/mm/memory-manager.js';

class RecordingAddressSpace implements AddressSpace {
  readonly pages = new Map<number, { offset: number; access: number }>();

  mapFile(addr: number, _file: MappableFile, offset: number, length: number, access: number): void {
    for (let i = 0; i < length; i += PAGE_SIZE) this.pages.set(addr + i, { offset: offset + i, access });
  }

  unmap(addr: number, length: number): void {
    for (let i = 0; i < length; i += PAGE_SIZE) this.pages.delete(addr + i);
  }

  release(): void {
    this.pages.clear();
  }
}

interface Fixture {
  file: MemoryFile;
  space: RecordingAddressSpace;
  mm: MemoryManager;
}

const LAYOUT = { minAddress: 0x10000, maxAddress: 0x7ff000000000, stackTop: 0x7ff000000000, maxStackSize: 8 * 1024 * 1024, mmapTop: 0x7fe000000000 };
const BASE = 0x100000000;

/** Reads application memory the way the program would: through the platform's page mappings. */
function readAsProgram(fx: Fixture, addr: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let done = 0; done < length;) {
    const page = addr + done - ((addr + done) % PAGE_SIZE);
    const mapping = fx.space.pages.get(page);
    if (mapping === undefined) throw new Error(`page 0x${page.toString(16)} is not mapped`);
    const within = (addr + done) - page;
    const count = Math.min(PAGE_SIZE - within, length - done);
    out.set(fx.file.view(mapping.offset + within, count), done);
    done += count;
  }
  return out;
}

function errnoOf(action: () => unknown): number | undefined {
  try {
    action();
  } catch (error) {
    if (error instanceof SysError) return error.errno;
    throw error;
  }
  return undefined;
}

const test = suite<Fixture>('memory manager', {} as Fixture);

test.before.each((fx) => {
  fx.file = new MemoryFile(2 ** 30);
  fx.space = new RecordingAddressSpace();
  fx.mm = new MemoryManager(fx.file, fx.space, LAYOUT);
});

test.after.each((fx) => {
  fx.mm.release();
  fx.file.close();
});

test('copyOut reaches the pages the program sees', (fx) => {
  fx.mm.mapAnonymous(BASE, 4 * PAGE_SIZE, Prot.READ | Prot.WRITE);
  const data = Buffer.from('spans a page boundary');
  fx.mm.copyOut(BASE + PAGE_SIZE - 5, data);
  assert.equal(readAsProgram(fx, BASE + PAGE_SIZE - 5, data.length), data);
  assert.equal(fx.mm.copyIn(BASE + PAGE_SIZE - 5, data.length), data);
  assert.is(fx.space.pages.get(BASE)?.access, Access.Read | Access.Write);
});

test('unmapped memory is EFAULT', (fx) => {
  fx.mm.mapAnonymous(BASE, PAGE_SIZE, Prot.READ | Prot.WRITE);
  assert.is(errnoOf(() => fx.mm.copyIn(BASE + PAGE_SIZE - 2, 4)), Errno.EFAULT);
  assert.is(errnoOf(() => fx.mm.copyIn(-8, 4)), Errno.EFAULT);
  assert.is(errnoOf(() => fx.mm.copyOut(BASE + 2 * PAGE_SIZE, Buffer.alloc(1))), Errno.EFAULT);
});

test('munmap frees pages and removes mappings', (fx) => {
  fx.mm.mapAnonymous(BASE, 8 * PAGE_SIZE, Prot.READ | Prot.WRITE);
  assert.is(fx.file.allocatedBytes, 8 * PAGE_SIZE);
  fx.mm.unmap(BASE + 2 * PAGE_SIZE, BASE + 4 * PAGE_SIZE);
  assert.is(fx.file.allocatedBytes, 6 * PAGE_SIZE);
  assert.not.ok(fx.space.pages.has(BASE + 2 * PAGE_SIZE));
  assert.ok(fx.space.pages.has(BASE + 4 * PAGE_SIZE));
  assert.is(errnoOf(() => fx.mm.copyIn(BASE + 3 * PAGE_SIZE, 1)), Errno.EFAULT);
  assert.is(fx.mm.vmas.items.length, 2);
});

test('freed pages come back zeroed', (fx) => {
  fx.mm.mapAnonymous(BASE, PAGE_SIZE, Prot.READ | Prot.WRITE);
  fx.mm.copyOut(BASE, Buffer.alloc(PAGE_SIZE, 0xaa));
  const offset = fx.space.pages.get(BASE)!.offset;
  fx.mm.unmap(BASE, BASE + PAGE_SIZE);
  fx.mm.mapAnonymous(BASE, PAGE_SIZE, Prot.READ | Prot.WRITE);
  assert.is(fx.space.pages.get(BASE)!.offset, offset, 'the freed page is reused');
  assert.equal(fx.mm.copyIn(BASE, PAGE_SIZE), Buffer.alloc(PAGE_SIZE));
});

test('shared references keep a page alive', (fx) => {
  const offset = fx.file.allocate(2);
  fx.file.view(offset, 4)[0] = 9;
  fx.file.incRef(offset, 2 * PAGE_SIZE);
  fx.file.decRef(offset, 2 * PAGE_SIZE);
  assert.is(fx.file.refCount(offset), 1);
  assert.is(fx.file.view(offset, 4)[0], 9);
  fx.file.decRef(offset, 2 * PAGE_SIZE);
  assert.is(fx.file.refCount(offset), 0);
  assert.is(fx.file.allocatedBytes, 0);
});

test('mprotect changes access and splits VMAs', (fx) => {
  fx.mm.mapAnonymous(BASE, 3 * PAGE_SIZE, Prot.READ | Prot.WRITE);
  fx.mm.protect(BASE + PAGE_SIZE, BASE + 2 * PAGE_SIZE, Prot.READ);
  assert.is(fx.space.pages.get(BASE + PAGE_SIZE)?.access, Access.Read);
  assert.is(fx.mm.vmas.items.length, 3);
  assert.is(errnoOf(() => fx.mm.copyOut(BASE + PAGE_SIZE, Buffer.alloc(1))), Errno.EFAULT);
  assert.is(errnoOf(() => fx.mm.copyIn(BASE + PAGE_SIZE, 1)), undefined);

  fx.mm.protect(BASE + PAGE_SIZE, BASE + 2 * PAGE_SIZE, Prot.NONE);
  assert.not.ok(fx.space.pages.has(BASE + PAGE_SIZE), 'PROT_NONE pages are unmapped');
  fx.mm.protect(BASE, BASE + 3 * PAGE_SIZE, Prot.READ | Prot.WRITE);
  assert.is(fx.mm.vmas.items.length, 1, 'equal neighbours merge again');
  assert.is(errnoOf(() => fx.mm.protect(BASE, BASE + 4 * PAGE_SIZE, Prot.READ)), Errno.ENOMEM);
});

test('mremap grows in place, then moves without copying', (fx) => {
  fx.mm.mapAnonymous(BASE, 2 * PAGE_SIZE, Prot.READ | Prot.WRITE);
  fx.mm.copyOut(BASE, Buffer.from('kept'));
  assert.is(fx.mm.remap(BASE, 2 * PAGE_SIZE, 4 * PAGE_SIZE, 0, 0), BASE);
  fx.mm.copyOut(BASE + 3 * PAGE_SIZE, Buffer.from('tail'));

  fx.mm.mapAnonymous(BASE + 4 * PAGE_SIZE, PAGE_SIZE, Prot.READ);
  assert.is(errnoOf(() => fx.mm.remap(BASE, 4 * PAGE_SIZE, 8 * PAGE_SIZE, 0, 0)), Errno.ENOMEM);
  const firstOffset = fx.space.pages.get(BASE)!.offset;
  const moved = fx.mm.remap(BASE, 4 * PAGE_SIZE, 8 * PAGE_SIZE, MremapFlag.MAYMOVE, 0);
  assert.is.not(moved, BASE);
  assert.is(fx.space.pages.get(moved)!.offset, firstOffset, 'the same memory-file page moved');
  assert.is(readAsProgram(fx, moved, 4).toString(), 'kept');
  assert.is(readAsProgram(fx, moved + 3 * PAGE_SIZE, 4).toString(), 'tail');
  assert.not.ok(fx.space.pages.has(BASE));
  assert.equal(fx.mm.copyIn(moved + 7 * PAGE_SIZE, 8), Buffer.alloc(8));
});

test('mremap shrinks and moves to a fixed address', (fx) => {
  fx.mm.mapAnonymous(BASE, 4 * PAGE_SIZE, Prot.READ | Prot.WRITE);
  fx.mm.copyOut(BASE, Buffer.from('data'));
  assert.is(fx.mm.remap(BASE, 4 * PAGE_SIZE, PAGE_SIZE, 0, 0), BASE);
  assert.is(fx.file.allocatedBytes, PAGE_SIZE);
  const target = BASE + 0x100000;
  assert.is(fx.mm.remap(BASE, PAGE_SIZE, 2 * PAGE_SIZE, MremapFlag.MAYMOVE | MremapFlag.FIXED, target), target);
  assert.is(fx.mm.copyIn(target, 4).toString(), 'data');
  assert.is(errnoOf(() => fx.mm.copyIn(BASE, 1)), Errno.EFAULT);
});

test('brk grows and shrinks the heap', (fx) => {
  fx.mm.setBrkStart(BASE + 123);
  const start = fx.mm.brkEnd;
  assert.is(start, BASE + PAGE_SIZE);
  assert.is(fx.mm.brk(0), start, 'brk(0) returns the current break');
  assert.is(fx.mm.brk(start + 3 * PAGE_SIZE + 5), start + 3 * PAGE_SIZE + 5);
  fx.mm.copyOut(start + 2 * PAGE_SIZE, Buffer.from('heap'));
  assert.is(fx.mm.brk(start + PAGE_SIZE), start + PAGE_SIZE);
  assert.is(errnoOf(() => fx.mm.copyIn(start + 2 * PAGE_SIZE, 1)), Errno.EFAULT);
  fx.mm.brk(start + 3 * PAGE_SIZE);
  assert.equal(fx.mm.copyIn(start + 2 * PAGE_SIZE, 4), Buffer.alloc(4), 'regrown heap is zeroed');

  fx.mm.mapAnonymous(start + 4 * PAGE_SIZE, PAGE_SIZE, Prot.READ);
  assert.is(fx.mm.brk(start + 8 * PAGE_SIZE), start + 3 * PAGE_SIZE, 'brk does not grow over a mapping');
});

test('large mappings commit on fault', (fx) => {
  const size = 4 * EAGER_COMMIT_LIMIT;
  fx.mm.mapAnonymous(BASE, size, Prot.READ | Prot.WRITE);
  assert.is(fx.file.allocatedBytes, 0);
  assert.not.ok(fx.space.pages.has(BASE + size / 2));
  assert.ok(fx.mm.handleFault(BASE + size / 2 + 100, Access.Write));
  assert.ok(fx.space.pages.has(BASE + size / 2));
  assert.ok(fx.file.allocatedBytes > 0, 'the fault committed memory');
  assert.ok(fx.file.allocatedBytes < size, 'the fault committed a window, not the whole mapping');
  assert.not.ok(fx.mm.handleFault(BASE + size / 2, Access.Write), 'a committed page does not fault twice');

  fx.mm.copyOut(BASE + size - 4, Buffer.from('last'));
  assert.is(readAsProgram(fx, BASE + size - 4, 4).toString(), 'last', 'a system call commits what it touches');
});

test('threads faulting on one page at once are each resolved', (fx) => {
  const size = 4 * EAGER_COMMIT_LIMIT;
  fx.mm.mapAnonymous(BASE, size, Prot.READ | Prot.WRITE);
  const first: FaultRecord = { mm: undefined, page: -1, access: -1, generation: -1 };
  const second: FaultRecord = { mm: undefined, page: -1, access: -1, generation: -1 };
  assert.ok(fx.mm.handleFault(BASE + 8, Access.Write, first));
  // The second thread faulted before the first one's mapping took effect: not a violation.
  assert.ok(fx.mm.handleFault(BASE + 16, Access.Write, second));
  // The same thread faulting again with no mapping change is one the platform cannot resolve.
  assert.not.ok(fx.mm.handleFault(BASE + 24, Access.Write, second));
});

test('faults outside VMAs or against protection are violations', (fx) => {
  fx.mm.mapAnonymous(BASE, 2 * EAGER_COMMIT_LIMIT, Prot.NONE);
  assert.not.ok(fx.mm.handleFault(BASE, Access.Read));
  assert.not.ok(fx.mm.handleFault(BASE - PAGE_SIZE, Access.Read));
  fx.mm.protect(BASE, BASE + 2 * EAGER_COMMIT_LIMIT, Prot.READ);
  assert.not.ok(fx.mm.handleFault(BASE, Access.Write));
  assert.ok(fx.mm.handleFault(BASE, Access.Read));
});

test('findFree allocates downwards and honours hints', (fx) => {
  const first = fx.mm.findFree(PAGE_SIZE);
  assert.is(first, LAYOUT.mmapTop - PAGE_SIZE);
  fx.mm.mapAnonymous(first, PAGE_SIZE, Prot.READ);
  assert.is(fx.mm.findFree(2 * PAGE_SIZE), first - 2 * PAGE_SIZE);
  assert.is(fx.mm.findFree(PAGE_SIZE, BASE), BASE);
  assert.is(fx.mm.findFree(PAGE_SIZE, first), first - PAGE_SIZE, 'an occupied hint is ignored');
});

test('readCString stops at NUL and limits length', (fx) => {
  fx.mm.mapAnonymous(BASE, 2 * PAGE_SIZE, Prot.READ | Prot.WRITE);
  fx.mm.copyOut(BASE + PAGE_SIZE - 3, Buffer.from('ab\xffcd\0', 'latin1'));
  assert.is(fx.mm.readCString(BASE + PAGE_SIZE - 3), 'ab\xffcd');
  assert.is(errnoOf(() => fx.mm.readCString(BASE + PAGE_SIZE - 3, 4)), Errno.ENAMETOOLONG);
  fx.mm.copyOut(BASE + 2 * PAGE_SIZE - 2, Buffer.from('xy'));
  assert.is(errnoOf(() => fx.mm.readCString(BASE + 2 * PAGE_SIZE - 2)), Errno.EFAULT);
});

/** Forks fx.mm into a second memory manager with its own recording address space. */
function forkFixture(fx: Fixture): Fixture {
  const space = new RecordingAddressSpace();
  return { file: fx.file, space, mm: fx.mm.fork(space) };
}

test('fork shares pages until one side writes', (fx) => {
  const pages = 10;
  fx.mm.mapAnonymous(BASE, pages * PAGE_SIZE, Prot.READ | Prot.WRITE);
  for (let i = 0; i < pages; i++) fx.mm.copyOut(BASE + i * PAGE_SIZE, Buffer.from(`page ${i}`));
  assert.is(fx.file.allocatedBytes, pages * PAGE_SIZE);

  const child = forkFixture(fx);
  try {
    assert.is(fx.file.allocatedBytes, pages * PAGE_SIZE, 'fork copies no page');
    assert.is(fx.file.refCount(fx.space.pages.get(BASE)!.offset), 2);
    assert.is(fx.space.pages.get(BASE)?.access, Access.Read, "the parent's shared pages lose write access");
    assert.is(child.space.pages.size, 0, "the child's pages are mapped on its first touch");

    // The child writes page 3 from user code: a write fault, then the write lands in its own copy.
    assert.ok(child.mm.handleFault(BASE + 3 * PAGE_SIZE + 8, Access.Write));
    const childPage = child.space.pages.get(BASE + 3 * PAGE_SIZE)!;
    assert.is(childPage.access, Access.Read | Access.Write);
    child.file.view(childPage.offset, 5).set(Buffer.from('child'));
    assert.is(fx.file.allocatedBytes, (pages + 1) * PAGE_SIZE, 'one page was copied');

    // The parent writes the same page through a system call.
    fx.mm.copyOut(BASE + 3 * PAGE_SIZE, Buffer.from('paren'));
    assert.is(fx.file.allocatedBytes, (pages + 1) * PAGE_SIZE, 'the last sharer keeps the original page');
    assert.is(fx.file.refCount(fx.space.pages.get(BASE + 3 * PAGE_SIZE)!.offset), 1);
    assert.is(readAsProgram(fx, BASE + 3 * PAGE_SIZE, 6).toString(), 'paren3');
    assert.is(readAsProgram(child, BASE + 3 * PAGE_SIZE, 6).toString(), 'child3');

    // Untouched pages are still shared and read the same on both sides.
    assert.ok(child.mm.handleFault(BASE + 5 * PAGE_SIZE, Access.Read));
    assert.is(child.space.pages.get(BASE + 5 * PAGE_SIZE)?.offset, fx.space.pages.get(BASE + 5 * PAGE_SIZE)?.offset);
    assert.is(child.space.pages.get(BASE + 5 * PAGE_SIZE)?.access, Access.Read);
    assert.is(readAsProgram(child, BASE + 5 * PAGE_SIZE, 6).toString(), 'page 5');
  } finally {
    child.mm.release();
  }
  assert.is(fx.file.allocatedBytes, pages * PAGE_SIZE, "the child's release frees only its copies");
  assert.is(fx.file.refCount(fx.space.pages.get(BASE + 5 * PAGE_SIZE)!.offset), 1);
  assert.is(fx.space.pages.get(BASE + 5 * PAGE_SIZE)?.access, Access.Read, 'mapped read-only until the next write');
  assert.ok(fx.mm.handleFault(BASE + 5 * PAGE_SIZE, Access.Write), 'a write to a page no longer shared needs no copy');
  assert.is(fx.space.pages.get(BASE + 5 * PAGE_SIZE)?.access, Access.Read | Access.Write);
  assert.is(fx.file.allocatedBytes, pages * PAGE_SIZE);
});

test('fork keeps shared memory shared', (fx) => {
  fx.mm.mapAnonymous(BASE, 2 * PAGE_SIZE, Prot.READ | Prot.WRITE, { shared: true });
  const child = forkFixture(fx);
  try {
    child.mm.copyOut(BASE + PAGE_SIZE, Buffer.from('from child'));
    assert.is(fx.mm.copyIn(BASE + PAGE_SIZE, 10).toString(), 'from child');
    assert.is(fx.space.pages.get(BASE)?.access, Access.Read | Access.Write, 'shared pages keep write access');
    assert.is(fx.file.allocatedBytes, 2 * PAGE_SIZE);
  } finally {
    child.mm.release();
  }
});

test('fork of uncommitted memory commits separately', (fx) => {
  const size = 4 * EAGER_COMMIT_LIMIT;
  fx.mm.mapAnonymous(BASE, size, Prot.READ | Prot.WRITE);
  const child = forkFixture(fx);
  try {
    child.mm.copyOut(BASE, Buffer.from('child'));
    assert.equal(fx.mm.copyIn(BASE, 5), Buffer.alloc(5), 'the parent does not see the child commit');
  } finally {
    child.mm.release();
  }
});

test('stack grows down on faults below it', (fx) => {
  const top = BASE + 0x10000000;
  fx.mm.mapAnonymous(top - 4 * PAGE_SIZE, 4 * PAGE_SIZE, Prot.READ | Prot.WRITE, { growsDown: true });
  assert.ok(fx.mm.handleFault(top - 10 * PAGE_SIZE + 8, Access.Write));
  assert.is(fx.mm.vmas.items.length, 1, 'the VMA was extended, not duplicated');
  assert.is(fx.mm.vmas.items[0].start, top - 10 * PAGE_SIZE);
  fx.mm.copyOut(top - 12 * PAGE_SIZE, Buffer.from('deeper'));
  assert.is(fx.mm.vmas.items[0].start, top - 12 * PAGE_SIZE, 'a system call grows the stack too');

  fx.mm.mapAnonymous(top - 0x200000, PAGE_SIZE, Prot.READ);
  assert.not.ok(fx.mm.handleFault(top - 0x200000 + 2 * PAGE_SIZE, Access.Write), 'no growth into the guard gap');
  assert.not.ok(fx.mm.handleFault(top + PAGE_SIZE, Access.Read), 'no growth above the stack');
});

test('mincore reports committed pages', (fx) => {
  const size = 2 * EAGER_COMMIT_LIMIT;
  fx.mm.mapAnonymous(BASE, size, Prot.READ | Prot.WRITE);
  fx.mm.copyOut(BASE + PAGE_SIZE, Buffer.from('x'));
  const resident = new Uint8Array(4);
  fx.mm.residency(BASE, BASE + 4 * PAGE_SIZE, resident);
  assert.is(resident[1], 1);
  assert.is(resident.reduce((sum, value) => sum + value, 0), 1, 'only the touched page is resident');
  assert.is(errnoOf(() => fx.mm.residency(BASE + size - PAGE_SIZE, BASE + size + PAGE_SIZE, new Uint8Array(2))), Errno.ENOMEM);
});

test('discard zeroes private memory', (fx) => {
  fx.mm.mapAnonymous(BASE, 2 * PAGE_SIZE, Prot.READ | Prot.WRITE);
  fx.mm.copyOut(BASE, Buffer.from('gone'));
  fx.mm.discard(BASE, BASE + PAGE_SIZE);
  assert.not.ok(fx.space.pages.has(BASE));
  assert.equal(fx.mm.copyIn(BASE, 4), Buffer.alloc(4));
});

test.run();
