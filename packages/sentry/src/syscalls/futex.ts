/**
 * futex: waiting on and waking 32-bit words of user memory (see kernel/futex.ts for the queues and
 * their keys). A waiter blocks through Task.block, so a signal or the exit of its thread group ends
 * the wait. FUTEX_WAKE_OP changes its word with an atomic instruction on the memory file, so the
 * change is atomic with respect to application threads running on other CPUs.
 */
import { Errno, fail } from '../errno.js';
import { BITSET_ANY, futexKey, type FutexKey, type FutexWaiter } from '../kernel/futex.js';
import { AtomicOperation } from '../native.js';
import type { Task } from '../kernel/task.js';
import { registerSyscall } from './table.js';

const FUTEX_WAIT = 0;
const FUTEX_WAKE = 1;
const FUTEX_REQUEUE = 3;
const FUTEX_CMP_REQUEUE = 4;
const FUTEX_WAKE_OP = 5;
const FUTEX_WAIT_BITSET = 9;
const FUTEX_WAKE_BITSET = 10;
const FUTEX_PRIVATE_FLAG = 128;
const FUTEX_CLOCK_REALTIME = 256;
const FUTEX_CMD_MASK = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);

const NS_PER_MS = 1_000_000n;
/** setTimeout takes at most 2^31 - 1 milliseconds; longer waits re-arm the timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Offset from the monotonic clock to the Unix epoch, fixed at start-up like the clock calls'. */
const realtimeOffset = BigInt(Date.now()) * NS_PER_MS - process.hrtime.bigint();

/** FUTEX_OP_SET, FUTEX_OP_ADD, FUTEX_OP_OR, FUTEX_OP_ANDN and FUTEX_OP_XOR, indexed by their number. */
const WAKE_OP_OPERATIONS: readonly AtomicOperation[] = [
  AtomicOperation.EXCHANGE,
  AtomicOperation.ADD,
  AtomicOperation.OR,
  AtomicOperation.AND,
  AtomicOperation.XOR,
];
const FUTEX_OP_ANDN = 3;

function readWord(task: Task, addr: number): number {
  return task.mm.copyIn(addr, 4).readUInt32LE(0);
}

/** Reads a struct timespec as nanoseconds; EINVAL for a negative or unnormalized one. */
function readTimespec(task: Task, addr: number): bigint {
  const raw = task.mm.copyIn(addr, 16);
  const seconds = raw.readBigInt64LE(0);
  const nanoseconds = raw.readBigInt64LE(8);
  if (seconds < 0n || nanoseconds < 0n || nanoseconds >= 1_000_000_000n) fail(Errno.EINVAL);
  return seconds * 1_000_000_000n + nanoseconds;
}

/** Converts the timeout argument into a monotonic deadline in nanoseconds, or undefined for none. */
function deadline(task: Task, command: number, op: number, timeout: number): bigint | undefined {
  if (timeout === 0) return undefined;
  const value = readTimespec(task, timeout);
  const now = process.hrtime.bigint();
  // FUTEX_WAIT takes a relative timeout; FUTEX_WAIT_BITSET an absolute time on its clock.
  if (command === FUTEX_WAIT) return now + value;
  return (op & FUTEX_CLOCK_REALTIME) !== 0 ? value - realtimeOffset : value;
}

function wait(task: Task, key: FutexKey, addr: number, expected: number, bitset: number, until: bigint | undefined): number | Promise<number> {
  if (readWord(task, addr) !== expected >>> 0) return -Errno.EAGAIN;
  if (until !== undefined && until <= process.hrtime.bigint()) return -Errno.ETIMEDOUT;

  const futexes = task.kernel.futexes;
  return task.block<number>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const waiter: FutexWaiter = {
      key,
      bitset,
      wake: () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve(0);
      },
    };
    const arm = (): void => {
      if (until === undefined) return;
      const left = Number((until - process.hrtime.bigint() + NS_PER_MS - 1n) / NS_PER_MS);
      if (left <= 0) {
        futexes.remove(waiter);
        resolve(-Errno.ETIMEDOUT);
        return;
      }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    futexes.enqueue(waiter);
    arm();
    return () => {
      if (timer !== undefined) clearTimeout(timer);
      futexes.remove(waiter);
    };
  });
}

/**
 * FUTEX_WAKE_OP: applies the encoded operation to *addr2 atomically, wakes up to `count` waiters
 * of addr, and up to `count2` of addr2 if the encoded comparison holds for the old value of *addr2.
 */
function wakeOp(task: Task, isPrivate: boolean, addr: number, count: number, addr2: number, count2: number, encoded: number): number {
  const operation = (encoded >>> 28) & 0x7;
  const shift = (encoded >>> 28) & 0x8;
  const comparison = (encoded >>> 24) & 0xf;
  let operand = (encoded << 8) >> 20;
  const comparand = (encoded << 20) >> 20;
  if (shift !== 0) {
    // Linux takes an out-of-range shift modulo 32, with a warning in its log, rather than failing.
    operand = 1 << (operand & 31);
  }

  const key = futexKey(task.mm, addr, isPrivate);
  const key2 = futexKey(task.mm, addr2, isPrivate);
  if (operation >= WAKE_OP_OPERATIONS.length) fail(Errno.ENOSYS);
  const offset2 = task.mm.writableFileOffset(addr2, 4);
  const old = task.mm.memoryFile.atomicFetch(offset2, WAKE_OP_OPERATIONS[operation], operation === FUTEX_OP_ANDN ? ~operand : operand);

  // As on Linux, an unknown comparison fails only after the operation has changed the word.
  let condition: boolean;
  switch (comparison) {
    case 0: condition = old === comparand; break;
    case 1: condition = old !== comparand; break;
    case 2: condition = old < comparand; break;
    case 3: condition = old <= comparand; break;
    case 4: condition = old > comparand; break;
    case 5: condition = old >= comparand; break;
    default: return fail(Errno.ENOSYS);
  }

  const futexes = task.kernel.futexes;
  let woken = futexes.wakeKey(key, count);
  if (condition) woken += futexes.wakeKey(key2, count2);
  return woken;
}

function futex(task: Task, addr: number, opBits: number, value: number, timeoutOrCount: number, addr2: number, value3: number): number | Promise<number> {
  const op = opBits | 0;
  const command = op & FUTEX_CMD_MASK;
  const count = value | 0;
  const futexes = task.kernel.futexes;
  if ((op & FUTEX_CLOCK_REALTIME) !== 0 && command !== FUTEX_WAIT && command !== FUTEX_WAIT_BITSET) fail(Errno.ENOSYS);

  const isPrivate = (op & FUTEX_PRIVATE_FLAG) !== 0;
  switch (command) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET: {
      const bitset = command === FUTEX_WAIT ? BITSET_ANY : value3 >>> 0;
      if (bitset === 0) fail(Errno.EINVAL);
      const until = deadline(task, command, op, timeoutOrCount);
      return wait(task, futexKey(task.mm, addr, isPrivate), addr, value, bitset, until);
    }
    case FUTEX_WAKE:
      return futexes.wakeKey(futexKey(task.mm, addr, isPrivate), count);
    case FUTEX_WAKE_BITSET:
      if ((value3 | 0) === 0) fail(Errno.EINVAL);
      return futexes.wakeKey(futexKey(task.mm, addr, isPrivate), count, value3 >>> 0);
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE: {
      const requeueCount = timeoutOrCount | 0;
      if (count < 0 || requeueCount < 0) fail(Errno.EINVAL);
      const key = futexKey(task.mm, addr, isPrivate);
      const key2 = futexKey(task.mm, addr2, isPrivate);
      if (command === FUTEX_CMP_REQUEUE && readWord(task, addr) !== value3 >>> 0) return -Errno.EAGAIN;
      return futexes.requeue(key, count, key2, requeueCount);
    }
    case FUTEX_WAKE_OP:
      return wakeOp(task, isPrivate, addr, count, addr2, timeoutOrCount | 0, value3 | 0);
    default:
      return -Errno.ENOSYS;
  }
}

registerSyscall('futex', futex, {
  args: ['ptr', 'int', 'int', 'ptr', 'ptr', 'hex'],
  support: 'partial',
  note: 'priority-inheritance operations (LOCK_PI, UNLOCK_PI, TRYLOCK_PI, CMP_REQUEUE_PI, WAIT_REQUEUE_PI) return ENOSYS',
});
