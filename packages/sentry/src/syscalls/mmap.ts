/**
 * Memory system calls: brk, mmap, munmap, mprotect, mremap, madvise, msync, mincore and the mlock
 * family. Argument checks follow Linux's order and errno choices; the semantics live in
 * mm/memory-manager.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { Errno, fail } from '../errno.js';
import { RLIM_INFINITY, Rlimit } from '../kernel/limits.js';
import type { Task } from '../kernel/task.js';
import { PAGE_SIZE } from '../memory/memory-file.js';
import { MapFlag, MremapFlag, Prot, PROT_ACCESS_MASK } from '../mm/flags.js';
import { pageUp } from '../mm/memory-manager.js';
import type { FileDescription } from '../vfs/file.js';
import { S_IFDIR, S_IFIFO, S_IFMT, S_IFSOCK } from '../vfs/flags.js';
import { registerSyscall } from './table.js';

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_RDWR = 2;

const MADV_DONTNEED = 4;
const MADV_REMOVE = 9;

const MLOCK_ONFAULT = 1;

const MCL_CURRENT = 1;
const MCL_FUTURE = 2;
const MCL_ONFAULT = 4;

const MS_ASYNC = 1;
const MS_INVALIDATE = 2;
const MS_SYNC = 4;

function checkProt(prot: number): void {
  if ((prot & ~(PROT_ACCESS_MASK | Prot.GROWSDOWN | Prot.GROWSUP)) !== 0) fail(Errno.EINVAL);
}

/** Rounds a length up to pages, failing with ENOMEM when that leaves the address space. */
function pageLength(length: number): number {
  const rounded = pageUp(length);
  if (rounded > 2 ** 47) fail(Errno.ENOMEM);
  return rounded;
}

/** File types without an mmap operation on Linux, where mmap fails with ENODEV. */
const UNMAPPABLE_TYPES = new Set([S_IFDIR, S_IFIFO, S_IFSOCK]);

function checkFileAccess(file: FileDescription, prot: number, shared: boolean): void {
  const mode = file.flags & O_ACCMODE;
  if (mode === O_WRONLY) fail(Errno.EACCES);
  if (shared && (prot & Prot.WRITE) !== 0 && mode !== O_RDWR) fail(Errno.EACCES);
  if (UNMAPPABLE_TYPES.has(file.stat().mode & S_IFMT)) fail(Errno.ENODEV);
}

/** Copies the file's bytes from `offset` into the new mapping at [start, start + length). */
async function fillFromFile(task: Task, file: FileDescription, start: number, length: number, offset: number): Promise<number> {
  const views: Uint8Array[] = [];
  task.mm.views(start, length, (view) => views.push(view));
  try {
    let position = offset;
    for (const view of views) {
      let done = 0;
      while (done < view.length) {
        const pending = file.pread(task, view.subarray(done), position + done);
        const count = typeof pending === 'number' ? pending : await pending;
        if (count === 0) return start;
        done += count;
      }
      position += view.length;
    }
    return start;
  } catch (error) {
    task.mm.unmap(start, start + length);
    throw error;
  }
}

function mmap(task: Task, addr: number, length: number, prot: number, flags: number, fd: number, offset: number): number | Promise<number> {
  const mm = task.mm;
  if (length === 0 || offset < 0) fail(Errno.EINVAL);
  if (offset % PAGE_SIZE !== 0) fail(Errno.EINVAL);
  if (length < 0) fail(Errno.ENOMEM);
  checkProt(prot);
  const type = flags & MapFlag.TYPE;
  if (type !== MapFlag.SHARED && type !== MapFlag.PRIVATE && type !== MapFlag.SHARED_VALIDATE) fail(Errno.EINVAL);
  const shared = type !== MapFlag.PRIVATE;
  const size = pageLength(length);

  const anonymous = (flags & MapFlag.ANONYMOUS) !== 0;
  let file: FileDescription | undefined;
  if (!anonymous) {
    file = task.fdTable.get(fd);
    checkFileAccess(file, prot, shared);
  }

  let start: number;
  if ((flags & (MapFlag.FIXED | MapFlag.FIXED_NOREPLACE)) !== 0) {
    if (addr % PAGE_SIZE !== 0) fail(Errno.EINVAL);
    if (!mm.inUserRange(addr, size)) fail(Errno.ENOMEM);
    if ((flags & MapFlag.FIXED_NOREPLACE) !== 0 && !mm.vmas.isFree(addr, addr + size)) fail(Errno.EEXIST);
    start = addr;
    mm.unmap(start, start + size);
  } else {
    start = mm.findFree(size, addr);
    if (start < 0) fail(Errno.ENOMEM);
  }

  const populate = (flags & MapFlag.POPULATE) !== 0 || file !== undefined;
  const growsDown = (flags & MapFlag.GROWSDOWN) !== 0;
  if (file === undefined) {
    mm.mapAnonymous(start, size, prot, { shared, populate, growsDown });
    if (populate) mm.populate(start, start + size);
    return start;
  }
  const { dev, ino } = file.stat();
  mm.mapAnonymous(start, size, prot, { shared, populate, growsDown, name: file.path, file: { dev, ino, offset } });
  return fillFromFile(task, file, start, size, offset);
}

function munmap(task: Task, addr: number, length: number): number {
  if (addr % PAGE_SIZE !== 0 || length <= 0) fail(Errno.EINVAL);
  const size = pageUp(length);
  if (!task.mm.inUserRange(addr, size)) fail(Errno.EINVAL);
  task.mm.unmap(addr, addr + size);
  return 0;
}

function mprotect(task: Task, addr: number, length: number, prot: number): number {
  if (addr % PAGE_SIZE !== 0) fail(Errno.EINVAL);
  checkProt(prot);
  if (length === 0) return 0;
  if (length < 0) fail(Errno.ENOMEM);
  const size = pageLength(length);
  if (!task.mm.inUserRange(addr, size)) fail(Errno.ENOMEM);
  task.mm.protect(addr, addr + size, prot);
  return 0;
}

function mremap(task: Task, oldAddr: number, oldLength: number, newLength: number, flags: number, newAddr: number): number {
  if (oldAddr % PAGE_SIZE !== 0) fail(Errno.EINVAL);
  if ((flags & ~(MremapFlag.MAYMOVE | MremapFlag.FIXED | MremapFlag.DONTUNMAP)) !== 0) fail(Errno.EINVAL);
  if ((flags & MremapFlag.FIXED) !== 0 && (flags & MremapFlag.MAYMOVE) === 0) fail(Errno.EINVAL);
  // MREMAP_DONTUNMAP and duplicating a shared mapping (old_size 0) are not supported yet.
  if ((flags & MremapFlag.DONTUNMAP) !== 0 || oldLength === 0) fail(Errno.EINVAL);
  if (newLength <= 0 || oldLength < 0) fail(Errno.EINVAL);
  const oldSize = pageLength(oldLength);
  const newSize = pageLength(newLength);
  if (!task.mm.inUserRange(oldAddr, oldSize)) fail(Errno.EFAULT);
  return task.mm.remap(oldAddr, oldSize, newSize, flags, newAddr);
}

function madvise(task: Task, addr: number, length: number, advice: number): number {
  advice |= 0;
  if (addr % PAGE_SIZE !== 0 || length < 0) fail(Errno.EINVAL);
  if (length === 0) return 0;
  const size = pageLength(length);
  if (!task.mm.inUserRange(addr, size)) fail(Errno.ENOMEM);
  if (advice === MADV_DONTNEED || advice === MADV_REMOVE) {
    task.mm.discard(addr, addr + size);
    return 0;
  }
  // Every other advice is a hint the kernel may ignore; the range must still be mapped.
  if (!task.mm.isFullyMapped(addr, addr + size)) fail(Errno.ENOMEM);
  return 0;
}

function msync(task: Task, addr: number, length: number, flags: number): number {
  if (addr % PAGE_SIZE !== 0 || (flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) !== 0) fail(Errno.EINVAL);
  if ((flags & MS_ASYNC) !== 0 && (flags & MS_SYNC) !== 0) fail(Errno.EINVAL);
  const size = pageLength(Math.max(0, length));
  if (size > 0 && !task.mm.isFullyMapped(addr, addr + size)) fail(Errno.ENOMEM);
  // Shared file mappings are private copies so far, so there is nothing to write back.
  return 0;
}

function mincore(task: Task, addr: number, length: number, vector: number): number {
  if (addr % PAGE_SIZE !== 0) fail(Errno.EINVAL);
  if (length < 0) fail(Errno.ENOMEM);
  if (length === 0) return 0;
  const size = pageLength(length);
  if (!task.mm.inUserRange(addr, size)) fail(Errno.ENOMEM);
  const resident = new Uint8Array(size / PAGE_SIZE);
  task.mm.residency(addr, addr + size, resident);
  task.mm.copyOut(vector, resident);
  return 0;
}

/** Page-aligned bounds of an mlock range, which Linux widens to whole pages rather than rejecting. */
function lockRange(task: Task, addr: number, length: number): [number, number] {
  if (length < 0) fail(Errno.ENOMEM);
  const start = addr - (addr % PAGE_SIZE);
  const end = pageUp(addr + length);
  if (!task.mm.inUserRange(start, end - start)) fail(Errno.ENOMEM);
  return [start, end];
}

/**
 * Checks `bytes` against RLIMIT_MEMLOCK, which binds tasks without CAP_IPC_LOCK (root has it).
 * NOTE: the check is per call; the bytes locked by earlier calls are not added up.
 */
function checkLockLimit(task: Task, bytes: number): void {
  if (task.creds.euid === 0) return;
  const limit = task.limits.get(Rlimit.MEMLOCK).cur;
  if (limit === 0n) fail(Errno.EPERM);
  if (BigInt(bytes) > limit) fail(Errno.ENOMEM);
}

/**
 * Locking is accepted and changes nothing else: application memory never goes to swap here,
 * because the memory file is never paged out by the sentry. Locked pages are committed, as mlock faults them in.
 */
function mlock2(task: Task, addr: number, length: number, flagBits: number): number {
  const flags = flagBits | 0;
  if ((flags & ~MLOCK_ONFAULT) !== 0) fail(Errno.EINVAL);
  if (length === 0) return 0;
  const [start, end] = lockRange(task, addr, length);
  checkLockLimit(task, end - start);
  if ((flags & MLOCK_ONFAULT) !== 0) {
    if (!task.mm.isFullyMapped(start, end)) fail(Errno.ENOMEM);
  } else {
    task.mm.populate(start, end);
  }
  return 0;
}

function munlock(task: Task, addr: number, length: number): number {
  if (length === 0) return 0;
  const [start, end] = lockRange(task, addr, length);
  if (!task.mm.isFullyMapped(start, end)) fail(Errno.ENOMEM);
  return 0;
}

/** NOTE: MCL_CURRENT does not commit the existing mappings, so a later first touch still costs a fault. */
function mlockall(task: Task, flagBits: number): number {
  const flags = flagBits | 0;
  if (flags === 0 || (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) !== 0 || flags === MCL_ONFAULT) fail(Errno.EINVAL);
  if (task.creds.euid !== 0 && task.limits.get(Rlimit.MEMLOCK).cur === 0n) fail(Errno.EPERM);
  return 0;
}

/** Host RAM plus swap in bytes: the most one private writable allocation may take, as below. */
function commitLimit(): number {
  let swap = 0;
  try {
    const match = /^SwapTotal:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/meminfo', 'latin1'));
    if (match !== null) swap = Number(match[1]) * 1024;
  } catch {
    // Without /proc/meminfo the limit is RAM alone.
  }
  return os.totalmem() + swap;
}

let cachedCommitLimit = 0;

/**
 * brk: moves the program break and returns the new one, or the old one when it cannot. Like Linux,
 * growth fails when the data segment would exceed RLIMIT_DATA, and when it alone is larger than
 * RAM plus swap, which is what Linux's default overcommit policy (vm.overcommit_memory = 0)
 * refuses.
 */
function brk(task: Task, addr: number): number {
  const mm = task.mm;
  if (addr > mm.brkEnd) {
    const limit = task.limits.get(Rlimit.DATA).cur;
    if (limit !== RLIM_INFINITY && BigInt(pageUp(addr) - mm.brkStart) > limit) return mm.brkEnd;
    cachedCommitLimit ||= commitLimit();
    if (pageUp(addr) - pageUp(mm.brkEnd) > cachedCommitLimit) return mm.brkEnd;
  }
  return mm.brk(addr);
}

registerSyscall('brk', brk, { args: ['ptr'] });
registerSyscall('mmap', mmap, {
  args: ['ptr', 'int', 'flags', 'flags', 'fd', 'hex'],
  support: 'partial',
  note: 'file mappings are private copies of the file, so MAP_SHARED writes do not reach the file or other mappings',
});
registerSyscall('munmap', munmap, { args: ['ptr', 'int'] });
registerSyscall('mprotect', mprotect, { args: ['ptr', 'int', 'flags'] });
registerSyscall('mremap', mremap, {
  args: ['ptr', 'int', 'int', 'flags', 'ptr'],
  support: 'partial',
  note: 'MREMAP_DONTUNMAP and old_size 0 (duplicating a shared mapping) return EINVAL',
});
registerSyscall('madvise', madvise, { args: ['ptr', 'int', 'int'] });
registerSyscall('msync', msync, { args: ['ptr', 'int', 'flags'] });
registerSyscall('mincore', mincore, { args: ['ptr', 'int', 'ptr'] });
registerSyscall('mlock', (task, addr, length) => mlock2(task, addr, length, 0), { args: ['ptr', 'int'] });
registerSyscall('mlock2', mlock2, { args: ['ptr', 'int', 'flags'] });
registerSyscall('munlock', munlock, { args: ['ptr', 'int'] });
registerSyscall('mlockall', mlockall, {
  args: ['flags'],
  support: 'partial',
  note: 'MCL_CURRENT does not fault in existing mappings; locking never changes paging, because nothing is paged out',
});
registerSyscall('munlockall', () => 0);
