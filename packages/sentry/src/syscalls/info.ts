/**
 * System information and time: uname, sysinfo, getrandom, resource limits, clocks and CPU
 * affinity. Time comes from the host's clocks; the sandbox has no clock of its own.
 */
import { randomFillSync } from 'node:crypto';
import * as os from 'node:os';
import { Errno, fail } from '../errno.js';
import { RLIM_NLIMITS } from '../kernel/limits.js';
import type { Task } from '../kernel/task.js';
import { Prot } from '../mm/flags.js';
import { registerSyscall } from './table.js';

const NS_PER_SECOND = 1_000_000_000n;

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const CLOCK_PROCESS_CPUTIME_ID = 2;
const CLOCK_THREAD_CPUTIME_ID = 3;
const CLOCK_MONOTONIC_RAW = 4;
const CLOCK_REALTIME_COARSE = 5;
const CLOCK_MONOTONIC_COARSE = 6;
const CLOCK_BOOTTIME = 7;
const CLOCK_REALTIME_ALARM = 8;
const CLOCK_BOOTTIME_ALARM = 9;
const CLOCK_TAI = 11;

const GRND_NONBLOCK = 1;
const GRND_RANDOM = 2;
const GRND_INSECURE = 4;
/** Linux returns at most this many bytes from one getrandom call. */
const GETRANDOM_MAX = 33554431;

/** struct timespec, reused so that clock_gettime allocates nothing. */
const timespec = Buffer.alloc(16);

/** Offset from the monotonic clock (hrtime) to the Unix epoch, fixed at start-up. */
const realtimeOffset = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

function realtimeNs(): bigint {
  return process.hrtime.bigint() + realtimeOffset;
}

/** Reads clock `clock` in nanoseconds; EINVAL for an unknown clock. */
export function clockNs(task: Task, clock: number): bigint {
  switch (clock | 0) {
    case CLOCK_REALTIME:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_REALTIME_ALARM:
    case CLOCK_TAI:
      return realtimeNs();
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME:
    case CLOCK_BOOTTIME_ALARM:
      return process.hrtime.bigint();
    case CLOCK_PROCESS_CPUTIME_ID:
    case CLOCK_THREAD_CPUTIME_ID: {
      // NOTE: this is the sentry's CPU time, which includes the program's system calls but not the
      // time the program ran in user mode in its own host process.
      const usage = process.cpuUsage();
      return BigInt(usage.user + usage.system) * 1000n - task.kernel.cpuTimeAtStartUs * 1000n;
    }
    default:
      return fail(Errno.EINVAL);
  }
}

export function writeTimespec(task: Task, addr: number, ns: bigint): void {
  timespec.writeBigInt64LE(ns / NS_PER_SECOND, 0);
  timespec.writeBigInt64LE(ns % NS_PER_SECOND, 8);
  task.mm.copyOut(addr, timespec);
}

/** Reads a struct timespec and returns it in nanoseconds; EINVAL for a malformed one. */
export function readTimespec(task: Task, addr: number): bigint {
  const bytes = task.mm.copyIn(addr, 16);
  const seconds = bytes.readBigInt64LE(0);
  const nanoseconds = bytes.readBigInt64LE(8);
  if (seconds < 0n || nanoseconds < 0n || nanoseconds >= NS_PER_SECOND) fail(Errno.EINVAL);
  return seconds * NS_PER_SECOND + nanoseconds;
}

function uname(task: Task, addr: number): number {
  const fields = ['Linux', os.hostname(), os.release(), os.version(), 'x86_64', '(none)'];
  const utsname = Buffer.alloc(65 * fields.length);
  fields.forEach((field, index) => utsname.write(field.slice(0, 64), index * 65));
  task.mm.copyOut(addr, utsname);
  return 0;
}

function sysinfo(task: Task, addr: number): number {
  const info = Buffer.alloc(112);
  const uptime = (process.hrtime.bigint() - task.kernel.bootTime) / NS_PER_SECOND;
  info.writeBigInt64LE(uptime, 0);
  os.loadavg().forEach((load, index) => info.writeBigUInt64LE(BigInt(Math.round(load * 65536)), 8 + index * 8));
  info.writeBigUInt64LE(BigInt(os.totalmem()), 32);
  info.writeBigUInt64LE(BigInt(os.freemem()), 40);
  info.writeUInt16LE(1, 80);
  info.writeUInt32LE(1, 104);
  task.mm.copyOut(addr, info);
  return 0;
}

function getrandom(task: Task, addr: number, length: number, flags: number): number {
  flags >>>= 0;
  if ((flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) !== 0) fail(Errno.EINVAL);
  if ((flags & GRND_RANDOM) !== 0 && (flags & GRND_INSECURE) !== 0) fail(Errno.EINVAL);
  if (length < 0) fail(Errno.EINVAL);
  const requested = Math.min(length, GETRANDOM_MAX);
  // Like Linux, fill up to the first page that cannot be written and return that count.
  const total = task.mm.accessibleLength(addr, requested, Prot.WRITE);
  if (total === 0 && requested > 0) fail(Errno.EFAULT);
  const chunk = Buffer.alloc(Math.min(total, 65536));
  for (let done = 0; done < total; done += chunk.length) {
    const piece = chunk.subarray(0, Math.min(chunk.length, total - done));
    randomFillSync(piece);
    task.mm.copyOut(addr + done, piece);
  }
  return total;
}

function prlimit64(task: Task, pid: number, resource: number, newLimit: number, oldLimit: number): number {
  pid |= 0;
  resource >>>= 0;
  if (pid !== 0 && pid !== task.tgid) fail(Errno.ESRCH);
  if (resource < 0 || resource >= RLIM_NLIMITS) fail(Errno.EINVAL);
  let requested: { cur: bigint; max: bigint } | undefined;
  if (newLimit !== 0) {
    const bytes = task.mm.copyIn(newLimit, 16);
    requested = { cur: bytes.readBigUInt64LE(0), max: bytes.readBigUInt64LE(8) };
  }
  if (oldLimit !== 0) {
    const current = task.limits.get(resource);
    const bytes = Buffer.alloc(16);
    bytes.writeBigUInt64LE(current.cur, 0);
    bytes.writeBigUInt64LE(current.max, 8);
    task.mm.copyOut(oldLimit, bytes);
  }
  return requested === undefined ? 0 : task.limits.set(resource, requested, task.creds.euid === 0);
}

function sched_getaffinity(task: Task, pid: number, length: number, addr: number): number {
  pid |= 0;
  length >>>= 0;
  if (pid !== 0 && pid !== task.tid) fail(Errno.ESRCH);
  // The kernel's cpumask is one unsigned long for up to 64 CPUs; smaller buffers are rejected.
  if (length < 8 || length % 8 !== 0) fail(Errno.EINVAL);
  const cpus = Math.min(os.availableParallelism(), 64);
  const mask = Buffer.alloc(8);
  mask.writeBigUInt64LE((1n << BigInt(cpus)) - 1n);
  task.mm.copyOut(addr, mask);
  return 8;
}

registerSyscall('uname', uname, { args: ['ptr'] });
registerSyscall('sysinfo', sysinfo, { args: ['ptr'] });
registerSyscall('getrandom', getrandom, { args: ['ptr', 'int', 'flags'] });

registerSyscall('prlimit64', prlimit64, {
  args: ['int', 'int', 'ptr', 'ptr'],
  support: 'partial',
  note: 'only RLIMIT_NPROC, RLIMIT_MEMLOCK and RLIMIT_DATA are enforced',
});
registerSyscall('getrlimit', (task, resource, addr) => prlimit64(task, 0, resource, 0, addr), {
  args: ['int', 'ptr'],
});
registerSyscall('setrlimit', (task, resource, addr) => prlimit64(task, 0, resource, addr, 0), {
  args: ['int', 'ptr'],
  support: 'partial',
  note: 'only RLIMIT_NPROC, RLIMIT_MEMLOCK and RLIMIT_DATA are enforced',
});

registerSyscall('clock_gettime', (task, clock, addr) => {
  writeTimespec(task, addr, clockNs(task, clock));
  return 0;
}, { args: ['int', 'ptr'] });
registerSyscall('gettimeofday', (task, tv, tz) => {
  if (tv !== 0) {
    const ns = realtimeNs();
    const timeval = Buffer.alloc(16);
    timeval.writeBigInt64LE(ns / NS_PER_SECOND, 0);
    timeval.writeBigInt64LE((ns % NS_PER_SECOND) / 1000n, 8);
    task.mm.copyOut(tv, timeval);
  }
  // The kernel's timezone is UTC with no daylight saving: struct timezone is all zeros.
  if (tz !== 0) task.mm.copyOut(tz, Buffer.alloc(8));
  return 0;
}, { args: ['ptr', 'ptr'] });
registerSyscall('time', (task, addr) => {
  const seconds = realtimeNs() / NS_PER_SECOND;
  if (addr !== 0) {
    const bytes = Buffer.alloc(8);
    bytes.writeBigInt64LE(seconds);
    task.mm.copyOut(addr, bytes);
  }
  return Number(seconds);
}, { args: ['ptr'] });

registerSyscall('sched_getaffinity', sched_getaffinity, { args: ['int', 'int', 'ptr'] });
registerSyscall('getcpu', (task, cpu, node) => {
  const zero = Buffer.alloc(4);
  if (cpu !== 0) task.mm.copyOut(cpu, zero);
  if (node !== 0) task.mm.copyOut(node, zero);
  return 0;
}, { args: ['ptr', 'ptr'], support: 'partial', note: 'always reports CPU 0 and node 0' });
