/**
 * I/O multiplexing: poll, ppoll, select and pselect6. Each call checks the files' readiness() and,
 * when nothing is ready, waits through Task.block on their watchReadiness() and a timer, then
 * checks again. A signal ends the wait: poll restarts with the same deadline when no handler runs,
 * and the others fail with EINTR or restart with the time left written back, as Linux does.
 */
import { ERESTART_RESTARTBLOCK, ERESTARTNOHAND, Errno, fail, SysError } from '../errno.js';
import { setBlocked } from '../kernel/signals/state.js';
import type { Task } from '../kernel/task.js';
import type { FileDescription } from '../vfs/file.js';
import {
  type CancelWatch,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  POLLPRI,
  POLLRDBAND,
  POLLRDNORM,
  POLLWRBAND,
  POLLWRNORM,
} from '../vfs/poll-events.js';
import { registerSyscall } from './table.js';

const NS_PER_SECOND = 1_000_000_000n;
const NS_PER_MS = 1_000_000n;
const NS_PER_US = 1000n;

/** Maximum delay of setTimeout, in milliseconds; a longer wait sleeps in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const POLLFD_SIZE = 8;
const SIGSET_SIZE = 8;

/** Events select counts as readable, writable and exceptional, as Linux's fs/select.c. */
const SELECT_IN = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR;
const SELECT_OUT = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR;
const SELECT_EX = POLLPRI;

/** One file to check: `events` are the bits asked for, `revents` the ones found. */
interface PollTarget {
  readonly fd: number;
  readonly events: number;
  revents: number;
}

/**
 * A deadline on process.hrtime's clock in nanoseconds: undefined waits forever, and 0n never
 * waits (a zero timeout).
 */
type Deadline = bigint | undefined;

function deadlineAfter(ns: bigint): bigint {
  return ns === 0n ? 0n : process.hrtime.bigint() + ns;
}

/** Fills in each target's revents from its file and returns how many have any. */
function scan(task: Task, targets: readonly PollTarget[]): number {
  let count = 0;
  for (const target of targets) {
    target.revents = 0;
    if (target.fd < 0) continue;
    const file = lookup(task, target.fd);
    target.revents = file === undefined ? POLLNVAL : file.readiness() & (target.events | POLLERR | POLLHUP);
    if (target.revents !== 0) count++;
  }
  return count;
}

function lookup(task: Task, fd: number): FileDescription | undefined {
  try {
    return task.fdTable.get(fd);
  } catch (error) {
    if (error instanceof SysError) return undefined;
    throw error;
  }
}

/**
 * Waits until a watch or the timer fires, or a signal interrupts. Returns false when interrupted.
 * The timer is capped, so the caller rechecks the deadline after every wake-up.
 */
async function waitOnce(task: Task, targets: readonly PollTarget[], deadline: Deadline): Promise<boolean> {
  const cancels: CancelWatch[] = [];
  const cancelAll = (): void => {
    for (const cancel of cancels.splice(0)) cancel();
  };
  try {
    await task.block<void>((resolve) => {
      for (const target of targets) {
        const file = target.fd < 0 ? undefined : lookup(task, target.fd);
        if (file !== undefined) cancels.push(file.watchReadiness(target.events, () => resolve()));
      }
      if (deadline !== undefined) {
        const ms = Math.min(Math.ceil(Number(deadline - process.hrtime.bigint()) / 1e6), MAX_TIMER_MS);
        const timer = setTimeout(resolve, Math.max(ms, 0));
        cancels.push(() => clearTimeout(timer));
      }
      return cancelAll;
    });
    return true;
  } catch (error) {
    if (error instanceof SysError) return false;
    throw error;
  } finally {
    cancelAll();
  }
}

/**
 * Checks the targets until one is ready, the deadline passes or a signal arrives. Returns the
 * ready count, 0 on timeout, or -ERESTARTNOHAND when interrupted.
 */
function pollTargets(task: Task, targets: readonly PollTarget[], deadline: Deadline): number | Promise<number> {
  const count = scan(task, targets);
  if (count > 0 || deadline === 0n) return count;
  return (async () => {
    for (;;) {
      if (!(await waitOnce(task, targets, deadline))) return -ERESTARTNOHAND;
      const ready = scan(task, targets);
      if (ready > 0) return ready;
      if (deadline !== undefined && process.hrtime.bigint() >= deadline) return 0;
    }
  })();
}

/** Reads the pollfd array; EINVAL when nfds exceeds RLIMIT_NOFILE, as Linux. */
function readPollfds(task: Task, addr: number, nfds: number): PollTarget[] {
  if (nfds < 0 || nfds > task.fdTable.limit) fail(Errno.EINVAL);
  if (nfds === 0) return [];
  const bytes = task.mm.copyIn(addr, nfds * POLLFD_SIZE);
  const targets: PollTarget[] = [];
  for (let i = 0; i < nfds; i++) {
    targets.push({ fd: bytes.readInt32LE(i * POLLFD_SIZE), events: bytes.readUInt16LE(i * POLLFD_SIZE + 4), revents: 0 });
  }
  return targets;
}

function writeRevents(task: Task, addr: number, targets: readonly PollTarget[]): void {
  if (targets.length === 0) return;
  const bytes = task.mm.copyIn(addr, targets.length * POLLFD_SIZE);
  targets.forEach((target, i) => bytes.writeUInt16LE(target.revents, i * POLLFD_SIZE + 6));
  task.mm.copyOut(addr, bytes);
}

async function finishPoll(task: Task, addr: number, targets: readonly PollTarget[], result: number | Promise<number>): Promise<number> {
  const count = await result;
  writeRevents(task, addr, targets);
  return count;
}

function pollUntil(task: Task, addr: number, nfds: number, deadline: Deadline): number | Promise<number> {
  const targets = readPollfds(task, addr, nfds);
  const result = pollTargets(task, targets, deadline);
  if (typeof result === 'number') {
    writeRevents(task, addr, targets);
    return result;
  }
  return finishPoll(task, addr, targets, result).then((count) => {
    if (count !== -ERESTARTNOHAND) return count;
    // Without a handler, restart_syscall polls on to the same deadline, as Linux's poll does.
    task.signals.restartBlock = (restarted) => pollUntil(restarted, addr, nfds, deadline);
    return -ERESTART_RESTARTBLOCK;
  });
}

function poll(task: Task, addr: number, nfds: number, timeoutMs: number): number | Promise<number> {
  timeoutMs |= 0;
  const deadline = timeoutMs < 0 ? undefined : deadlineAfter(BigInt(timeoutMs) * NS_PER_MS);
  return pollUntil(task, addr, nfds >>> 0, deadline);
}

/** Reads a struct timespec timeout; EINVAL for a negative or unnormalized one. */
function readTimespecTimeout(task: Task, addr: number): bigint {
  const bytes = task.mm.copyIn(addr, 16);
  const seconds = bytes.readBigInt64LE(0);
  const nanoseconds = bytes.readBigInt64LE(8);
  if (seconds < 0n || nanoseconds < 0n || nanoseconds >= NS_PER_SECOND) fail(Errno.EINVAL);
  return seconds * NS_PER_SECOND + nanoseconds;
}

/** Reads a struct timeval timeout; Linux folds whole seconds of tv_usec into tv_sec first. */
function readTimevalTimeout(task: Task, addr: number): bigint {
  const bytes = task.mm.copyIn(addr, 16);
  const microseconds = bytes.readBigInt64LE(8);
  const seconds = bytes.readBigInt64LE(0) + microseconds / 1_000_000n;
  const nanoseconds = (microseconds % 1_000_000n) * NS_PER_US;
  if (seconds < 0n || nanoseconds < 0n) fail(Errno.EINVAL);
  return seconds * NS_PER_SECOND + nanoseconds;
}

/**
 * Writes the time left before `deadline` back to the timeout, as Linux does for select, pselect6
 * and ppoll. A zero timeout is left alone. A fault turns an interruption into EINTR, because the
 * restarted call would not see the time left.
 */
function writeTimeLeft(task: Task, addr: number, deadline: Deadline, unit: 'timespec' | 'timeval', result: number): number {
  if (addr === 0 || deadline === undefined || deadline === 0n) return result;
  let left = deadline - process.hrtime.bigint();
  if (left < 0n) left = 0n;
  const bytes = Buffer.alloc(16);
  bytes.writeBigInt64LE(left / NS_PER_SECOND, 0);
  const fraction = left % NS_PER_SECOND;
  bytes.writeBigInt64LE(unit === 'timespec' ? fraction : fraction / NS_PER_US, 8);
  try {
    task.mm.copyOut(addr, bytes);
  } catch (error) {
    if (!(error instanceof SysError)) throw error;
    if (result === -ERESTARTNOHAND) return -Errno.EINTR;
  }
  return result;
}

/**
 * Installs the temporary signal mask of ppoll or pselect6 and returns a function that ends it.
 * After an interruption the mask stays until signal delivery restores it, so the handler runs
 * under the temporary mask. After any other result the old mask comes back at once.
 */
function applySigmask(task: Task, maskAddr: number, size: number): (result: number) => void {
  if (maskAddr === 0) return () => {};
  if (size !== SIGSET_SIZE) fail(Errno.EINVAL);
  const mask = task.mm.copyIn(maskAddr, SIGSET_SIZE).readBigUInt64LE(0);
  const signals = task.signals;
  const old = signals.blocked;
  signals.savedMask = old;
  setBlocked(task, mask);
  return (result) => {
    if (result === -ERESTARTNOHAND) return;
    signals.savedMask = undefined;
    setBlocked(task, old);
  };
}

/** Runs `body` under ppoll's or pselect6's mask, restoring it when `body` fails. */
async function withSigmask(task: Task, maskAddr: number, size: number, body: () => number | Promise<number>): Promise<number> {
  const restore = applySigmask(task, maskAddr, size);
  let result = 0;
  try {
    result = await body();
    return result;
  } catch (error) {
    result = 0;
    throw error;
  } finally {
    restore(result);
  }
}

async function ppoll(task: Task, addr: number, nfds: number, timeoutAddr: number, maskAddr: number, sigsetSize: number): Promise<number> {
  nfds >>>= 0;
  const deadline = timeoutAddr === 0 ? undefined : deadlineAfter(readTimespecTimeout(task, timeoutAddr));
  const result = await withSigmask(task, maskAddr, sigsetSize, async () => {
    const targets = readPollfds(task, addr, nfds);
    const count = await pollTargets(task, targets, deadline);
    writeRevents(task, addr, targets);
    return count;
  });
  return writeTimeLeft(task, timeoutAddr, deadline, 'timespec', result);
}

/** Number of bytes of an fd_set covering `nfds` descriptors: whole 64-bit words, as Linux copies. */
function fdSetBytes(nfds: number): number {
  return Math.ceil(nfds / 64) * 8;
}

function isSet(set: Buffer | undefined, fd: number): boolean {
  return set !== undefined && (set[fd >> 3] & (1 << (fd & 7))) !== 0;
}

/**
 * Reads the three sets of select or pselect6, waits, and writes the result sets back. Fails with
 * EBADF when a set names a descriptor that is not open.
 */
async function selectSets(task: Task, nfds: number, readAddr: number, writeAddr: number, exceptAddr: number, deadline: Deadline): Promise<number> {
  if (nfds < 0) fail(Errno.EINVAL);
  // Linux ignores bits above the descriptor table's size; the table never grows past its limit.
  nfds = Math.min(nfds, task.fdTable.limit);
  const size = fdSetBytes(nfds);
  const readSet = readAddr === 0 ? undefined : task.mm.copyIn(readAddr, size);
  const writeSet = writeAddr === 0 ? undefined : task.mm.copyIn(writeAddr, size);
  const exceptSet = exceptAddr === 0 ? undefined : task.mm.copyIn(exceptAddr, size);

  const targets: PollTarget[] = [];
  for (let fd = 0; fd < nfds; fd++) {
    let events = 0;
    if (isSet(readSet, fd)) events |= SELECT_IN;
    if (isSet(writeSet, fd)) events |= SELECT_OUT;
    if (isSet(exceptSet, fd)) events |= SELECT_EX;
    if (events === 0) continue;
    if (lookup(task, fd) === undefined) fail(Errno.EBADF);
    targets.push({ fd, events, revents: 0 });
  }

  const result = await pollTargets(task, targets, deadline);
  if (result < 0) return result;
  if (result > 0 && targets.some((target) => target.revents & POLLNVAL)) return -Errno.EBADF;

  // Each set bit of each result set counts, so a descriptor both readable and writable counts twice.
  let count = 0;
  const results = [readSet, writeSet, exceptSet].map((set) => (set === undefined ? undefined : Buffer.alloc(size)));
  const masks = [SELECT_IN, SELECT_OUT, SELECT_EX];
  const requested = [readSet, writeSet, exceptSet];
  for (const target of targets) {
    for (let i = 0; i < 3; i++) {
      const out = results[i];
      if (out === undefined || !isSet(requested[i], target.fd) || (target.revents & masks[i]) === 0) continue;
      out[target.fd >> 3] |= 1 << (target.fd & 7);
      count++;
    }
  }
  const addrs = [readAddr, writeAddr, exceptAddr];
  results.forEach((out, i) => {
    if (out !== undefined) task.mm.copyOut(addrs[i], out);
  });
  return count;
}

async function select(task: Task, nfds: number, readAddr: number, writeAddr: number, exceptAddr: number, timeoutAddr: number): Promise<number> {
  nfds |= 0;
  const deadline = timeoutAddr === 0 ? undefined : deadlineAfter(readTimevalTimeout(task, timeoutAddr));
  const result = await selectSets(task, nfds, readAddr, writeAddr, exceptAddr, deadline);
  return writeTimeLeft(task, timeoutAddr, deadline, 'timeval', result);
}

/** pselect6's sixth argument points to { const sigset_t *ss; size_t ss_len; }. */
async function pselect6(task: Task, nfds: number, readAddr: number, writeAddr: number, exceptAddr: number, timeoutAddr: number, maskArg: number): Promise<number> {
  nfds |= 0;
  const deadline = timeoutAddr === 0 ? undefined : deadlineAfter(readTimespecTimeout(task, timeoutAddr));
  let maskAddr = 0;
  let maskSize = 0;
  if (maskArg !== 0) {
    const bytes = task.mm.copyIn(maskArg, 16);
    maskAddr = Number(bytes.readBigUInt64LE(0));
    maskSize = Number(bytes.readBigUInt64LE(8));
  }
  const result = await withSigmask(task, maskAddr, maskSize, () => selectSets(task, nfds, readAddr, writeAddr, exceptAddr, deadline));
  return writeTimeLeft(task, timeoutAddr, deadline, 'timespec', result);
}

/** Gap shared by the four calls. */
const READINESS_NOTE = 'pipes, socket pairs, eventfds, epoll instances and host stdio streams report real readiness; other files are always ready';

registerSyscall('poll', poll, { args: ['ptr', 'int', 'int'], support: 'partial', note: READINESS_NOTE });
registerSyscall('ppoll', ppoll, { args: ['ptr', 'int', 'ptr', 'ptr', 'int'], support: 'partial', note: READINESS_NOTE });
registerSyscall('select', select, { args: ['int', 'ptr', 'ptr', 'ptr', 'ptr'], support: 'partial', note: READINESS_NOTE });
registerSyscall('pselect6', pselect6, { args: ['int', 'ptr', 'ptr', 'ptr', 'ptr', 'ptr'], support: 'partial', note: READINESS_NOTE });
