/**
 * The epoll family: epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait and
 * epoll_pwait2. A wait scans the instance (vfs/epoll.ts) and, when nothing is ready, blocks through
 * Task.block until a watched file or the timer wakes it, then scans again. A signal ends the wait
 * with EINTR and is never restarted, even with SA_RESTART, as in Linux.
 */
import { Errno, fail, SysError } from '../errno.js';
import { setBlocked } from '../kernel/signals/state.js';
import type { Task } from '../kernel/task.js';
import { Epoll, EPOLLEXCLUSIVE, EPOLLEXCLUSIVE_OK_BITS, EPOLLERR, EPOLLHUP, EPOLLWAKEUP, isPollable, type ReadyEvent } from '../vfs/epoll.js';
import { FileBase } from '../vfs/file-base.js';
import { O_CLOEXEC } from '../vfs/flags.js';
import { POLLIN } from '../vfs/poll-events.js';
import { registerSyscall } from './table.js';

const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;

/** sizeof(struct epoll_event): packed on x86-64, a u32 of events then a u64 of data. */
const EVENT_SIZE = 12;

/** Maximum number of events one wait may request (Linux's EP_MAX_EVENTS). */
const MAX_EVENTS = Math.floor(0x7fffffff / EVENT_SIZE);

const SIGSET_SIZE = 8;
const NS_PER_SECOND = 1_000_000_000n;
const NS_PER_MS = 1_000_000n;

/** Maximum delay of setTimeout, in milliseconds; a longer wait sleeps in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A deadline on process.hrtime's clock in nanoseconds. Undefined waits forever and 0n never waits. */
type Deadline = bigint | undefined;

function createEpoll(task: Task, cloexec: boolean): number {
  const epoll = new Epoll(0);
  try {
    return task.fdTable.install(epoll, cloexec);
  } catch (error) {
    epoll.decRef();
    throw error;
  }
}

/** Creates an instance. The size hint is ignored, but Linux still rejects one that is not positive. */
function epollCreate(task: Task, size: number): number {
  if ((size | 0) <= 0) fail(Errno.EINVAL);
  return createEpoll(task, false);
}

function epollCreate1(task: Task, flags: number): number {
  flags |= 0;
  if ((flags & ~O_CLOEXEC) !== 0) fail(Errno.EINVAL);
  return createEpoll(task, (flags & O_CLOEXEC) !== 0);
}

/** Checks in the order of Linux's do_epoll_ctl, so that a call with several faults fails as there. */
function epollCtl(task: Task, epfd: number, op: number, fd: number, eventAddr: number): number {
  op |= 0;
  let events = 0;
  let data = 0n;
  if (op !== EPOLL_CTL_DEL) {
    const bytes = task.mm.copyIn(eventAddr, EVENT_SIZE);
    events = bytes.readUInt32LE(0);
    data = bytes.readBigUInt64LE(4);
  }

  const epoll = task.fdTable.get(epfd);
  const target = task.fdTable.get(fd);
  if (!(target instanceof FileBase) || !isPollable(target)) fail(Errno.EPERM);

  if (op !== EPOLL_CTL_DEL && (events & EPOLLEXCLUSIVE) !== 0) {
    if (op === EPOLL_CTL_MOD) fail(Errno.EINVAL);
    if (op === EPOLL_CTL_ADD && (target instanceof Epoll || (events & ~EPOLLEXCLUSIVE_OK_BITS) !== 0)) fail(Errno.EINVAL);
  }
  if (epoll === target || !(epoll instanceof Epoll)) fail(Errno.EINVAL);

  // NOTE: EPOLLWAKEUP needs CAP_BLOCK_SUSPEND and has no effect here, so it is dropped as Linux
  // drops it for callers without the capability. EPOLLEXCLUSIVE is kept but wakes every waiter.
  events = (events & ~EPOLLWAKEUP) | EPOLLERR | EPOLLHUP;
  switch (op) {
    case EPOLL_CTL_ADD:
      epoll.add(target, fd, events, data);
      return 0;
    case EPOLL_CTL_MOD:
      epoll.modify(target, fd, events, data);
      return 0;
    case EPOLL_CTL_DEL:
      epoll.remove(target, fd);
      return 0;
    default:
      return fail(Errno.EINVAL);
  }
}

/** Waits until the instance may have an event or the timer fires; returns false on a signal. */
async function waitOnce(task: Task, epoll: Epoll, deadline: Deadline): Promise<boolean> {
  try {
    await task.block<void>((resolve) => {
      const cancelWatch = epoll.watchReadiness(POLLIN, () => resolve());
      if (deadline === undefined) return cancelWatch;
      const ms = Math.min(Math.ceil(Number(deadline - process.hrtime.bigint()) / 1e6), MAX_TIMER_MS);
      const timer = setTimeout(resolve, Math.max(ms, 0));
      return () => {
        cancelWatch();
        clearTimeout(timer);
      };
    });
    return true;
  } catch (error) {
    if (error instanceof SysError) return false;
    throw error;
  }
}

function writeEvents(task: Task, addr: number, ready: readonly ReadyEvent[]): number {
  if (ready.length === 0) return 0;
  const bytes = Buffer.alloc(ready.length * EVENT_SIZE);
  ready.forEach((event, i) => {
    bytes.writeUInt32LE(event.events >>> 0, i * EVENT_SIZE);
    bytes.writeBigUInt64LE(event.data, i * EVENT_SIZE + 4);
  });
  task.mm.copyOut(addr, bytes);
  return ready.length;
}

/** Scans and waits until events are ready, the deadline passes (0) or a signal arrives (-EINTR). */
async function waitForEvents(task: Task, epoll: Epoll, addr: number, max: number, deadline: Deadline): Promise<number> {
  // The wait holds a reference, so a close of the descriptor by another thread does not end it,
  // as in Linux.
  epoll.incRef();
  try {
    for (;;) {
      if (!(await waitOnce(task, epoll, deadline))) return -Errno.EINTR;
      const ready = epoll.collect(max);
      if (ready.length > 0) return writeEvents(task, addr, ready);
      if (deadline !== undefined && process.hrtime.bigint() >= deadline) return 0;
    }
  } finally {
    epoll.decRef();
  }
}

function epollWaitUntil(task: Task, epfd: number, addr: number, max: number, deadline: Deadline): number | Promise<number> {
  max |= 0;
  if (max <= 0 || max > MAX_EVENTS) fail(Errno.EINVAL);
  const epoll = task.fdTable.get(epfd);
  if (!(epoll instanceof Epoll)) return fail(Errno.EINVAL);

  const ready = epoll.collect(max);
  if (ready.length > 0) return writeEvents(task, addr, ready);
  if (deadline === 0n) return 0;
  return waitForEvents(task, epoll, addr, max, deadline);
}

function deadlineFromMs(timeoutMs: number): Deadline {
  timeoutMs |= 0;
  if (timeoutMs < 0) return undefined;
  return timeoutMs === 0 ? 0n : process.hrtime.bigint() + BigInt(timeoutMs) * NS_PER_MS;
}

function epollWait(task: Task, epfd: number, addr: number, max: number, timeoutMs: number): number | Promise<number> {
  return epollWaitUntil(task, epfd, addr, max, deadlineFromMs(timeoutMs));
}

/**
 * Runs a wait under the temporary signal mask of epoll_pwait or epoll_pwait2. After EINTR the mask
 * stays until signal delivery restores it, so the handler runs under the temporary mask.
 */
async function withSigmask(task: Task, maskAddr: number, size: number, body: () => number | Promise<number>): Promise<number> {
  if (maskAddr === 0) return body();
  if (size !== SIGSET_SIZE) fail(Errno.EINVAL);
  const mask = task.mm.copyIn(maskAddr, SIGSET_SIZE).readBigUInt64LE(0);
  const signals = task.signals;
  const old = signals.blocked;
  signals.savedMask = old;
  setBlocked(task, mask);

  let result = 0;
  try {
    result = await body();
    return result;
  } finally {
    if (result !== -Errno.EINTR) {
      signals.savedMask = undefined;
      setBlocked(task, old);
    }
  }
}

function epollPwait(task: Task, epfd: number, addr: number, max: number, timeoutMs: number, maskAddr: number, size: number): Promise<number> {
  const deadline = deadlineFromMs(timeoutMs);
  return withSigmask(task, maskAddr, size, () => epollWaitUntil(task, epfd, addr, max, deadline));
}

/** Like epoll_pwait, with the timeout as a struct timespec: NULL waits forever. */
function epollPwait2(task: Task, epfd: number, addr: number, max: number, timeoutAddr: number, maskAddr: number, size: number): Promise<number> {
  let deadline: Deadline;
  if (timeoutAddr !== 0) {
    const bytes = task.mm.copyIn(timeoutAddr, 16);
    const seconds = bytes.readBigInt64LE(0);
    const nanoseconds = bytes.readBigInt64LE(8);
    if (seconds < 0n || nanoseconds < 0n || nanoseconds >= NS_PER_SECOND) fail(Errno.EINVAL);
    const ns = seconds * NS_PER_SECOND + nanoseconds;
    deadline = ns === 0n ? 0n : process.hrtime.bigint() + ns;
  }
  return withSigmask(task, maskAddr, size, () => epollWaitUntil(task, epfd, addr, max, deadline));
}

/** Gap shared by the wait calls. */
const READINESS_NOTE = 'EPOLLET on host stdio streams behaves as level-triggered; EPOLLEXCLUSIVE wakes every waiter';

registerSyscall('epoll_create', epollCreate, { args: ['int'] });
registerSyscall('epoll_create1', epollCreate1, { args: ['flags'] });
registerSyscall('epoll_ctl', epollCtl, { args: ['fd', 'int', 'fd', 'ptr'], support: 'partial', note: 'character devices without a poll method (/dev/null) are accepted instead of failing with EPERM' });
registerSyscall('epoll_wait', epollWait, { args: ['fd', 'ptr', 'int', 'int'], support: 'partial', note: READINESS_NOTE });
registerSyscall('epoll_pwait', epollPwait, { args: ['fd', 'ptr', 'int', 'int', 'ptr', 'int'], support: 'partial', note: READINESS_NOTE });
registerSyscall('epoll_pwait2', epollPwait2, { args: ['fd', 'ptr', 'int', 'ptr', 'ptr', 'int'], support: 'partial', note: READINESS_NOTE });
