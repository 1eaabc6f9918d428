/**
 * Sleeping and timers: nanosleep, clock_nanosleep, alarm, setitimer, getitimer, times, getrusage,
 * clock_getres and sched_yield. Sleeps wait through Task.block, so a signal ends them. With a
 * handler the call fails with EINTR and reports the time left. Without one (a stop and continue,
 * an ignored signal), restart_syscall sleeps on until the original deadline.
 */
import { ERESTART_RESTARTBLOCK, ERESTARTNOHAND, Errno, fail } from '../errno.js';
import { sleepInterruptible } from '../kernel/signals/block.js';
import { intervalTimer, ITIMER_PROF, ITIMER_REAL, type TimerSetting } from '../kernel/signals/itimer.js';
import type { Task } from '../kernel/task.js';
import { clockNs, readTimespec, writeTimespec } from './info.js';
import { registerSyscall } from './table.js';

const NS_PER_SECOND = 1_000_000_000n;
const NS_PER_MICROSECOND = 1000n;

const CLOCK_THREAD_CPUTIME_ID = 3;
const CLOCK_REALTIME_COARSE = 5;
const CLOCK_MONOTONIC_COARSE = 6;

/** Resolution Linux reports for the coarse clocks: one tick at HZ=250. */
const COARSE_RESOLUTION_NS = 4_000_000n;

const TIMER_ABSTIME = 1;

/** Clock ticks per second of times() and of the tick counts in /proc (USER_HZ). */
const USER_HZ = 100n;

const RUSAGE_SELF = 0;
const RUSAGE_CHILDREN = -1;
const RUSAGE_THREAD = 1;
const RUSAGE_SIZE = 144;

/**
 * Sleeps until `deadline` on the monotonic clock (process.hrtime, in nanoseconds). When a signal
 * interrupts the sleep, it writes the time left to `remaining` (unless 0) and returns
 * ERESTART_RESTARTBLOCK with a restart that sleeps on to the same deadline.
 */
async function sleepUntil(task: Task, deadline: bigint, remaining: number): Promise<number> {
  const leftNs = deadline - process.hrtime.bigint();
  if (leftNs <= 0n) return 0;
  const leftMs = await sleepInterruptible(task, Number(leftNs) / 1e6);
  if (leftMs === 0) return 0;
  if (remaining !== 0) writeTimespec(task, remaining, BigInt(Math.ceil(leftMs * 1e6)));
  task.signals.restartBlock = (restarted) => sleepUntil(restarted, deadline, remaining);
  return -ERESTART_RESTARTBLOCK;
}

function nanosleep(task: Task, request: number, remaining: number): Promise<number> {
  const ns = readTimespec(task, request);
  return sleepUntil(task, process.hrtime.bigint() + ns, remaining);
}

async function clockNanosleep(task: Task, clock: number, flags: number, request: number, remaining: number): Promise<number> {
  clock |= 0;
  if (clock === CLOCK_THREAD_CPUTIME_ID) fail(Errno.EINVAL);
  const ns = readTimespec(task, request);
  const now = clockNs(task, clock);
  if ((flags & TIMER_ABSTIME) === 0) return sleepUntil(task, process.hrtime.bigint() + ns, remaining);

  // An absolute sleep needs no time left: the restarted call sleeps to the same absolute time.
  if (ns <= now) return 0;
  const leftMs = await sleepInterruptible(task, Number(ns - now) / 1e6);
  return leftMs === 0 ? 0 : -ERESTARTNOHAND;
}

/** Reads struct itimerval { it_interval, it_value } (two struct timeval); EINVAL for bad microseconds. */
function readItimerval(task: Task, addr: number): TimerSetting {
  if (addr === 0) return { value: 0n, interval: 0n };
  const bytes = task.mm.copyIn(addr, 32);
  const toNs = (offset: number): bigint => {
    const seconds = bytes.readBigInt64LE(offset);
    const microseconds = bytes.readBigInt64LE(offset + 8);
    if (seconds < 0n || microseconds < 0n || microseconds >= 1_000_000n) fail(Errno.EINVAL);
    return seconds * NS_PER_SECOND + microseconds * NS_PER_MICROSECOND;
  };
  return { interval: toNs(0), value: toNs(16) };
}

function writeItimerval(task: Task, addr: number, setting: TimerSetting): void {
  const bytes = Buffer.alloc(32);
  // Round up to whole microseconds so that an armed timer never reads as disarmed.
  const write = (offset: number, ns: bigint): void => {
    const microseconds = (ns + NS_PER_MICROSECOND - 1n) / NS_PER_MICROSECOND;
    bytes.writeBigInt64LE(microseconds / 1_000_000n, offset);
    bytes.writeBigInt64LE(microseconds % 1_000_000n, offset + 8);
  };
  write(0, setting.interval);
  write(16, setting.value);
  task.mm.copyOut(addr, bytes);
}

function checkWhich(which: number): number {
  which |= 0;
  if (which < ITIMER_REAL || which > ITIMER_PROF) fail(Errno.EINVAL);
  return which;
}

function setitimer(task: Task, which: number, value: number, oldValue: number): number {
  const timer = intervalTimer(task.threadGroup, checkWhich(which));
  const old = timer.set(readItimerval(task, value));
  if (oldValue !== 0) writeItimerval(task, oldValue, old);
  return 0;
}

function getitimer(task: Task, which: number, value: number): number {
  writeItimerval(task, value, intervalTimer(task.threadGroup, checkWhich(which)).get());
  return 0;
}

/** alarm: arms ITIMER_REAL once and returns the seconds the previous alarm had left, rounded as Linux does. */
function alarm(task: Task, seconds: number): number {
  const old = intervalTimer(task.threadGroup, ITIMER_REAL).set({ value: BigInt(seconds >>> 0) * NS_PER_SECOND, interval: 0n });
  if (old.value === 0n) return 0;
  const whole = old.value / NS_PER_SECOND;
  const fraction = old.value % NS_PER_SECOND;
  return Number(whole === 0n || fraction >= NS_PER_SECOND / 2n ? whole + 1n : whole);
}

/**
 * Returns the CPU time of the caller, split into user and system time, in nanoseconds.
 * NOTE: this is the sentry's CPU time since the kernel started, as for CLOCK_PROCESS_CPUTIME_ID.
 * It includes the program's system calls but not the time it ran in user mode in its own host
 * process, and every process of the sandbox gets the same value.
 */
function cpuTimes(task: Task): { user: bigint; system: bigint } {
  const usage = process.cpuUsage();
  const total = BigInt(usage.user + usage.system) - task.kernel.cpuTimeAtStartUs;
  const system = BigInt(usage.system) < total ? BigInt(usage.system) : total;
  return { user: (total - system) * 1000n, system: system * 1000n };
}

function times(task: Task, addr: number): number {
  const ticks = (ns: bigint): bigint => (ns * USER_HZ) / NS_PER_SECOND;
  if (addr !== 0) {
    const cpu = cpuTimes(task);
    const tms = Buffer.alloc(32);
    tms.writeBigInt64LE(ticks(cpu.user), 0);
    tms.writeBigInt64LE(ticks(cpu.system), 8);
    task.mm.copyOut(addr, tms);
  }
  return Number(ticks(process.hrtime.bigint() - task.kernel.bootTime));
}

function getrusage(task: Task, who: number, addr: number): number {
  who |= 0;
  if (who !== RUSAGE_SELF && who !== RUSAGE_CHILDREN && who !== RUSAGE_THREAD) fail(Errno.EINVAL);
  const usage = Buffer.alloc(RUSAGE_SIZE);
  if (who !== RUSAGE_CHILDREN) {
    const cpu = cpuTimes(task);
    const writeTimeval = (offset: number, ns: bigint): void => {
      usage.writeBigInt64LE(ns / NS_PER_SECOND, offset);
      usage.writeBigInt64LE((ns % NS_PER_SECOND) / NS_PER_MICROSECOND, offset + 8);
    };
    writeTimeval(0, cpu.user);
    writeTimeval(16, cpu.system);
  }
  task.mm.copyOut(addr, usage);
  return 0;
}

function clockGetres(task: Task, clock: number, addr: number): number {
  clockNs(task, clock);
  if (addr !== 0) {
    const coarse = (clock | 0) === CLOCK_REALTIME_COARSE || (clock | 0) === CLOCK_MONOTONIC_COARSE;
    writeTimespec(task, addr, coarse ? COARSE_RESOLUTION_NS : 1n);
  }
  return 0;
}

/** Lets the other tasks and the event loop run before the caller continues. */
function schedYield(): Promise<number> {
  return new Promise((resolve) => setImmediate(resolve, 0));
}

registerSyscall('nanosleep', nanosleep, { args: ['ptr', 'ptr'] });
registerSyscall('clock_nanosleep', clockNanosleep, { args: ['int', 'flags', 'ptr', 'ptr'] });
registerSyscall('alarm', alarm, { args: ['int'] });
registerSyscall('setitimer', setitimer, {
  args: ['int', 'ptr', 'ptr'],
  support: 'partial',
  note: 'ITIMER_VIRTUAL and ITIMER_PROF count wall-clock time instead of CPU time',
});
registerSyscall('getitimer', getitimer, { args: ['int', 'ptr'] });
registerSyscall('times', times, {
  args: ['ptr'],
  support: 'partial',
  note: "reports the sentry's CPU time, not the program's user time; children's times are 0",
});
registerSyscall('getrusage', getrusage, {
  args: ['int', 'ptr'],
  support: 'partial',
  note: "only the CPU times are filled, from the sentry's CPU time; RUSAGE_CHILDREN is all zeros",
});
registerSyscall('clock_getres', clockGetres, { args: ['int', 'ptr'] });
registerSyscall('sched_yield', schedYield);
