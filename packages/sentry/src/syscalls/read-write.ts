/** read, write, their vectored and positioned forms, and lseek. */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { Prot } from '../mm/flags.js';
import type { FileDescription } from '../vfs/file.js';
import { O_ACCMODE, O_RDONLY, O_WRONLY, S_IFIFO, S_IFMT } from '../vfs/flags.js';
import { registerSyscall } from './table.js';

/** Linux caps one read or write at MAX_RW_COUNT bytes (INT_MAX rounded down to a page). */
export const MAX_RW_COUNT = 0x7ffff000;

/** End of the user address range on x86-64 (TASK_SIZE_MAX); Linux's access_ok rejects buffers past it. */
const TASK_SIZE_MAX = 2 ** 47 - 4096;

/** Largest iovec array readv/writev accept (UIO_MAXIOV). */
const UIO_MAXIOV = 1024;

/**
 * Largest buffer the sentry allocates for one call; a larger request returns a short count, which
 * read(2) and write(2) allow. 64 MiB keeps one call's copy bounded.
 */
const MAX_CHUNK = 64 * 1024 * 1024;

// Descriptor arguments are C ints (or unsigned ints): only the low 32 bits of the register count.
function readableFile(task: Task, fd: number): FileDescription {
  const file = task.fdTable.get(fd | 0);
  if ((file.flags & O_ACCMODE) === O_WRONLY) fail(Errno.EBADF);
  return file;
}

function writableFile(task: Task, fd: number): FileDescription {
  const file = task.fdTable.get(fd | 0);
  if ((file.flags & O_ACCMODE) === O_RDONLY) fail(Errno.EBADF);
  return file;
}

/**
 * Checks a buffer as Linux's access_ok does, before the count is clamped, and returns the count
 * one call transfers. The count is a size_t, so a negative register value is a count beyond the
 * address space and fails with EFAULT, as on Linux.
 */
function checkBuffer(addr: number, count: number): number {
  if (count < 0 || addr < 0 || addr + count > TASK_SIZE_MAX) fail(Errno.EFAULT);
  return Math.min(count, MAX_RW_COUNT, MAX_CHUNK);
}

/**
 * Returns how many of the first `length` bytes at `addr` a transfer may use. Linux copies up to the
 * first page it cannot access and returns that short count, or EFAULT when it copied nothing.
 * NOTE: Linux's pipes drop the page-sized piece that faults and keep earlier pieces; here a pipe
 * transfer whose buffer is not wholly accessible fails with EFAULT and moves no data.
 */
function usableLength(task: Task, file: FileDescription, addr: number, length: number, access: number): number {
  const accessible = task.mm.accessibleLength(addr, length, access);
  if (accessible === length) return length;
  if (accessible === 0 || (file.stat().mode & S_IFMT) === S_IFIFO) fail(Errno.EFAULT);
  return accessible;
}

/**
 * Runs `operation` on `file` holding a reference, so a close from another thread while the call
 * waits cannot free the description under it, then `finish` with the count.
 */
function withReference(
  file: FileDescription,
  operation: () => number | Promise<number>,
  finish: (count: number) => number,
): number | Promise<number> {
  file.incRef();
  let result: number | Promise<number>;
  try {
    result = operation();
  } catch (error) {
    file.decRef();
    throw error;
  }
  if (typeof result === 'number') {
    file.decRef();
    return finish(result);
  }
  return result.then(
    (count) => {
      file.decRef();
      return finish(count);
    },
    (error: unknown) => {
      file.decRef();
      throw error;
    },
  );
}

function read(task: Task, fd: number, addr: number, count: number): number | Promise<number> {
  const file = readableFile(task, fd);
  let length = checkBuffer(addr, count);
  if (length === 0) return 0;
  length = usableLength(task, file, addr, length, Prot.WRITE);
  const buffer = Buffer.allocUnsafe(length);
  return withReference(file, () => file.read(task, buffer), (n) => {
    task.mm.copyOut(addr, buffer.subarray(0, n));
    return n;
  });
}

function write(task: Task, fd: number, addr: number, count: number): number | Promise<number> {
  const file = writableFile(task, fd);
  let length = checkBuffer(addr, count);
  if (length === 0) return 0;
  length = usableLength(task, file, addr, length, Prot.READ);
  const data = task.mm.copyIn(addr, length);
  return withReference(file, () => file.write(task, data), (n) => n);
}

function pread64(task: Task, fd: number, addr: number, count: number, offset: number): number | Promise<number> {
  const file = readableFile(task, fd);
  if (offset < 0) fail(Errno.EINVAL);
  let length = checkBuffer(addr, count);
  length = usableLength(task, file, addr, length, Prot.WRITE);
  const buffer = Buffer.allocUnsafe(length);
  return withReference(file, () => file.pread(task, buffer, offset), (n) => {
    task.mm.copyOut(addr, buffer.subarray(0, n));
    return n;
  });
}

function pwrite64(task: Task, fd: number, addr: number, count: number, offset: number): number | Promise<number> {
  const file = writableFile(task, fd);
  if (offset < 0) fail(Errno.EINVAL);
  let length = checkBuffer(addr, count);
  length = usableLength(task, file, addr, length, Prot.READ);
  const data = task.mm.copyIn(addr, length);
  return withReference(file, () => file.pwrite(task, data, offset), (n) => n);
}

interface IoVector {
  readonly base: number;
  readonly length: number;
}

/** Reads a struct iovec array; EINVAL for a bad count or a total beyond what one call allows. */
function readIoVectors(task: Task, addr: number, count: number): { vectors: IoVector[]; total: number } {
  if (count < 0 || count > UIO_MAXIOV) fail(Errno.EINVAL);
  const raw = task.mm.copyIn(addr, count * 16);
  const vectors: IoVector[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const base = Number(raw.readBigUInt64LE(i * 16));
    const length = raw.readBigInt64LE(i * 16 + 8);
    if (length < 0n) fail(Errno.EINVAL);
    if (length > 0n && (base < 0 || base + Number(length) > TASK_SIZE_MAX)) fail(Errno.EFAULT);
    // Linux truncates the total at MAX_RW_COUNT rather than failing.
    const kept = Math.min(Number(length), MAX_RW_COUNT - total);
    vectors.push({ base, length: kept });
    total += kept;
  }
  return { vectors, total: Math.min(total, MAX_CHUNK) };
}

/**
 * Returns how many of the vectors' first `total` bytes a transfer may use: the vectors in order up
 * to the first byte that is not accessible, by the same rule as usableLength.
 */
function usableVectorLength(task: Task, file: FileDescription, vectors: readonly IoVector[], total: number, access: number): number {
  let done = 0;
  for (const vector of vectors) {
    if (done >= total) break;
    const part = Math.min(vector.length, total - done);
    const accessible = task.mm.accessibleLength(vector.base, part, access);
    done += accessible;
    if (accessible < part) break;
  }
  if (done === total) return total;
  if (done === 0 || (file.stat().mode & S_IFMT) === S_IFIFO) fail(Errno.EFAULT);
  return done;
}

function scatter(task: Task, vectors: readonly IoVector[], data: Uint8Array): void {
  let done = 0;
  for (const vector of vectors) {
    if (done >= data.length) break;
    const part = Math.min(vector.length, data.length - done);
    task.mm.copyOut(vector.base, data.subarray(done, done + part));
    done += part;
  }
}

function gather(task: Task, vectors: readonly IoVector[], total: number): Buffer {
  const data = Buffer.allocUnsafe(total);
  let done = 0;
  for (const vector of vectors) {
    if (done >= total) break;
    const part = Math.min(vector.length, total - done);
    task.mm.copyInto(vector.base, data.subarray(done, done + part));
    done += part;
  }
  return data;
}

function readv(task: Task, fd: number, addr: number, count: number): number | Promise<number> {
  const file = readableFile(task, fd);
  const { vectors, total: requested } = readIoVectors(task, addr, count);
  if (requested === 0) return 0;
  const total = usableVectorLength(task, file, vectors, requested, Prot.WRITE);
  const buffer = Buffer.allocUnsafe(total);
  return withReference(file, () => file.read(task, buffer), (n) => {
    scatter(task, vectors, buffer.subarray(0, n));
    return n;
  });
}

function writev(task: Task, fd: number, addr: number, count: number): number | Promise<number> {
  const file = writableFile(task, fd);
  const { vectors, total: requested } = readIoVectors(task, addr, count);
  if (requested === 0) return 0;
  const total = usableVectorLength(task, file, vectors, requested, Prot.READ);
  const data = gather(task, vectors, total);
  return withReference(file, () => file.write(task, data), (n) => n);
}

function preadv(task: Task, fd: number, addr: number, count: number, offset: number): number | Promise<number> {
  const file = readableFile(task, fd);
  if (offset < 0) fail(Errno.EINVAL);
  const { vectors, total: requested } = readIoVectors(task, addr, count);
  const total = usableVectorLength(task, file, vectors, requested, Prot.WRITE);
  const buffer = Buffer.allocUnsafe(total);
  return withReference(file, () => file.pread(task, buffer, offset), (n) => {
    scatter(task, vectors, buffer.subarray(0, n));
    return n;
  });
}

function pwritev(task: Task, fd: number, addr: number, count: number, offset: number): number | Promise<number> {
  const file = writableFile(task, fd);
  if (offset < 0) fail(Errno.EINVAL);
  const { vectors, total: requested } = readIoVectors(task, addr, count);
  const total = usableVectorLength(task, file, vectors, requested, Prot.READ);
  const data = gather(task, vectors, total);
  return withReference(file, () => file.pwrite(task, data, offset), (n) => n);
}

function lseek(task: Task, fd: number, offset: number, whence: number): number {
  return task.fdTable.get(fd | 0).seek(offset, whence >>> 0);
}

// The sentry keeps no dirty data: host files are read-only and other files live in memory.
function fsync(task: Task, fd: number): number {
  task.fdTable.get(fd | 0);
  return 0;
}

registerSyscall('fsync', fsync, { args: ['fd'] });
registerSyscall('fdatasync', fsync, { args: ['fd'] });
registerSyscall('read', read, { args: ['fd', 'buffer', 'int'] });
registerSyscall('write', write, { args: ['fd', 'buffer', 'int'] });
registerSyscall('pread64', pread64, { args: ['fd', 'buffer', 'int', 'int'] });
registerSyscall('pwrite64', pwrite64, { args: ['fd', 'buffer', 'int', 'int'] });
registerSyscall('readv', readv, { args: ['fd', 'ptr', 'int'] });
registerSyscall('writev', writev, { args: ['fd', 'ptr', 'int'] });
registerSyscall('preadv', preadv, { args: ['fd', 'ptr', 'int', 'int'] });
registerSyscall('pwritev', pwritev, { args: ['fd', 'ptr', 'int', 'int'] });
registerSyscall('lseek', lseek, { args: ['fd', 'int', 'int'] });
