/**
 * sendfile: copies between two descriptors through a sentry buffer. When the input is seekable,
 * bytes are read at an explicit position and the input offset moves only by what the output
 * accepted, so nothing is lost when the output takes less than was read.
 */
import { Errno, fail, SysError } from '../errno.js';
import type { Task } from '../kernel/task.js';
import type { FileDescription } from '../vfs/file.js';
import { O_ACCMODE, O_APPEND, O_RDONLY, O_WRONLY, SEEK_CUR, SEEK_SET } from '../vfs/flags.js';
import { MAX_RW_COUNT } from './read-write.js';
import { registerSyscall } from './table.js';

/** Bytes copied per step; a call loops over steps until `count` is reached or the input ends. */
const CHUNK = 1024 * 1024;

interface Transfer {
  readonly task: Task;
  readonly input: FileDescription;
  readonly output: FileDescription;
  /** The input position for the next step; undefined when the input is not seekable. */
  position: number | undefined;
  readonly offsetAddr: number;
  remaining: number;
  done: number;
  readonly buffer: Buffer;
}

/** Records the new input position: in *offset when the caller passed one, else in the input's offset. */
function commitPosition(transfer: Transfer): void {
  if (transfer.position === undefined) return;
  if (transfer.offsetAddr !== 0) {
    const bytes = Buffer.alloc(8);
    bytes.writeBigInt64LE(BigInt(transfer.position));
    transfer.task.mm.copyOut(transfer.offsetAddr, bytes);
  } else {
    transfer.input.seek(transfer.position, SEEK_SET);
  }
}

function finish(transfer: Transfer, error?: unknown): number {
  commitPosition(transfer);
  if (transfer.done > 0 || error === undefined) return transfer.done;
  throw error;
}

/** Runs steps until done; returns a promise from the first step that must wait. */
function run(transfer: Transfer): number | Promise<number> {
  while (transfer.remaining > 0) {
    const length = Math.min(transfer.remaining, CHUNK);
    const chunk = transfer.buffer.subarray(0, length);
    let read: number | Promise<number>;
    let written: number | Promise<number>;
    try {
      read = transfer.position === undefined
        ? transfer.input.read(transfer.task, chunk)
        : transfer.input.pread(transfer.task, chunk, transfer.position);
      if (typeof read !== 'number') return read.then((n) => writeStep(transfer, n), (error: unknown) => finish(transfer, error));
      if (read === 0) break;
      written = transfer.output.write(transfer.task, chunk.subarray(0, read));
    } catch (error) {
      if (!(error instanceof SysError)) throw error;
      return finish(transfer, error);
    }
    if (typeof written !== 'number') return written.then((n) => afterWrite(transfer, read as number, n), (error: unknown) => finish(transfer, error));
    if (!afterWriteSync(transfer, read, written)) break;
  }
  return finish(transfer);
}

/** Accounts one step; returns whether the transfer should go on. */
function afterWriteSync(transfer: Transfer, read: number, written: number): boolean {
  transfer.done += written;
  transfer.remaining -= written;
  if (transfer.position !== undefined) transfer.position += written;
  return written === read;
}

function afterWrite(transfer: Transfer, read: number, written: number): number | Promise<number> {
  return afterWriteSync(transfer, read, written) ? run(transfer) : finish(transfer);
}

function writeStep(transfer: Transfer, read: number): number | Promise<number> {
  if (read === 0) return finish(transfer);
  const written = transfer.output.write(transfer.task, transfer.buffer.subarray(0, read));
  if (typeof written === 'number') return afterWrite(transfer, read, written);
  return written.then((n) => afterWrite(transfer, read, n), (error: unknown) => finish(transfer, error));
}

function sendfile(task: Task, outFd: number, inFd: number, offsetAddr: number, count: number): number | Promise<number> {
  // The descriptors are C ints: only the low 32 bits of the registers count.
  const input = task.fdTable.get(inFd | 0);
  const output = task.fdTable.get(outFd | 0);
  if ((input.flags & O_ACCMODE) === O_WRONLY || (output.flags & O_ACCMODE) === O_RDONLY) fail(Errno.EBADF);
  if (output.flags & O_APPEND) fail(Errno.EINVAL);
  if (count < 0) fail(Errno.EINVAL);

  let position: number | undefined;
  if (offsetAddr !== 0) {
    position = Number(task.mm.copyIn(offsetAddr, 8).readBigInt64LE(0));
    if (position < 0) fail(Errno.EINVAL);
  } else {
    try {
      position = input.seek(0, SEEK_CUR);
    } catch (error) {
      if (!(error instanceof SysError) || error.errno !== Errno.ESPIPE) throw error;
      position = undefined;
    }
  }
  // Linux requires a seekable input when an offset is given.
  if (offsetAddr !== 0) input.seek(0, SEEK_CUR);

  const remaining = Math.min(count, MAX_RW_COUNT);
  const transfer: Transfer = {
    task,
    input,
    output,
    position,
    offsetAddr,
    remaining,
    done: 0,
    buffer: Buffer.allocUnsafe(Math.min(remaining, CHUNK)),
  };
  return run(transfer);
}

registerSyscall('sendfile', sendfile, { args: ['fd', 'fd', 'ptr', 'int'] });
