/**
 * Contents of the per-process files of /proc (stat, statm, status, cmdline, environ, comm), generated
 * from the sentry's own thread groups, tasks and memory managers in the formats of Linux 6.x
 * (fs/proc/array.c and fs/proc/base.c).
 */
import { SIG_DFL, SIG_IGN } from '../kernel/signals/constants.js';
import { groupSignalsOf } from '../kernel/signals/state.js';
import type { Task } from '../kernel/task.js';
import type { ThreadGroup } from '../kernel/thread-group.js';
import type { MemoryManager } from '../mm/memory-manager.js';

/** USER_HZ: the unit of the times in /proc/PID/stat, as AT_CLKTCK tells programs. */
const CLOCK_TICKS_PER_SECOND = 100n;
const PAGE_SIZE = 4096;
/** The executable bit of a VMA's protection, PROT_EXEC. */
const PROT_EXEC = 4;
/** The writable bit of a VMA's protection, PROT_WRITE. */
const PROT_WRITE = 2;
/**
 * The queued signal limit that SigQ reports. NOTE: Linux prints RLIMIT_SIGPENDING, which it derives
 * from the machine's memory, so this fixed value is only a typical one.
 */
const SIGNAL_QUEUE_LIMIT = 63_457;
/** RLIM_INFINITY printed as an unsigned long, the rsslim field of stat. */
const RLIM_INFINITY = '18446744073709551615';
const MAX_STRINGS_BYTES = 1 << 20;

/** Process states as the first letter of stat's third field and as status's State line. */
const STATE_NAMES: Record<string, string> = {
  R: 'R (running)',
  S: 'S (sleeping)',
  T: 'T (stopped)',
  Z: 'Z (zombie)',
};

/**
 * Returns the state letter of `task` as `reader` sees it. The reader is itself running, and any
 * other task is sleeping while it waits in block() and running otherwise.
 */
export function taskState(task: Task, reader: Task | undefined): string {
  const group = task.threadGroup;
  if (group.zombie) return 'Z';
  if (groupSignalsOf(group).stopSignal !== 0) return 'T';
  if (task === reader) return 'R';
  return task.sleeping ? 'S' : 'R';
}

interface SignalMasks {
  pending: bigint;
  shared: bigint;
  blocked: bigint;
  ignored: bigint;
  caught: bigint;
}

function signalMasks(task: Task): SignalMasks {
  let ignored = 0n;
  let caught = 0n;
  task.signals.actions.forEach((action, index) => {
    const bit = 1n << BigInt(index);
    if (action.handler === SIG_IGN) ignored |= bit;
    else if (action.handler !== SIG_DFL) caught |= bit;
  });
  return {
    pending: task.signals.pending.set,
    shared: groupSignalsOf(task.threadGroup).pending.set,
    blocked: task.signals.blocked,
    ignored,
    caught,
  };
}

function parentPid(group: ThreadGroup): number {
  return group.parent?.tgid ?? 0;
}

/** Returns the lowest executable mapping, which stands for the program's text in stat. */
function codeRange(mm: MemoryManager): { start: number; end: number } {
  for (const vma of mm.vmas.items) {
    if ((vma.prot & PROT_EXEC) !== 0) return { start: vma.start, end: vma.end };
  }
  return { start: 0, end: 0 };
}

/**
 * Formats /proc/PID/stat (or /proc/PID/task/TID/stat) of `task`: its 52 fields in Linux's order.
 * NOTE: the sentry does not account CPU time or page faults per task, so utime, stime, the fault
 * counters and their children's sums are 0, and it keeps no data segment bounds, so start_data and
 * end_data are 0 too.
 */
export function formatStat(task: Task, reader: Task | undefined, ticksSinceBoot: (ns: bigint) => bigint): string {
  const group = task.threadGroup;
  const mm = task.mm;
  const masks = signalMasks(task);
  const code = codeRange(mm);
  const exitCode = group.exitStatus === undefined ? 0 : ((group.exitStatus.code ?? 0) << 8) | (group.exitStatus.signal ?? 0);
  // A zombie has released its memory, and Linux prints 0 for every address in it.
  const address = (value: number): number => (group.zombie ? 0 : value);
  const fields: Array<string | number | bigint> = [
    task.tid,
    `(${task.name})`,
    taskState(task, reader),
    parentPid(group),
    group.pgid,
    group.sid,
    group.tty === undefined ? 0 : encodeDevice(group.tty.rdev),
    // Linux shows -1 without a controlling terminal, and 0 when it has no foreground group.
    group.tty === undefined ? -1 : group.tty.foregroundPgid,
    0, // flags: the sentry has no PF_* task flags.
    0,
    0,
    0,
    0,
    0, // utime
    0, // stime
    0,
    0,
    20, // priority: 20 + nice
    0, // nice
    group.tasks.size,
    0, // itrealvalue, always 0 since Linux 2.6.17
    ticksSinceBoot(task.startTimeNs),
    mm.mappedBytes(),
    mm.residentBytes() / PAGE_SIZE,
    RLIM_INFINITY,
    code.start,
    code.end,
    address(mm.argStart), // startstack: the argument strings sit at the top of the initial stack.
    0, // kstkesp and kstkeip are shown only while the process dumps core.
    0,
    masks.pending | masks.shared,
    masks.blocked,
    masks.ignored,
    masks.caught,
    0, // wchan
    0,
    0,
    group.exitSignal,
    0, // processor
    0, // rt_priority
    0, // policy: SCHED_OTHER
    0,
    0,
    0,
    0, // start_data and end_data
    0,
    address(mm.brkStart),
    address(mm.argStart),
    address(mm.argEnd),
    address(mm.envStart),
    address(mm.envEnd),
    exitCode,
  ];
  return `${fields.join(' ')}\n`;
}

/**
 * Formats /proc/PID/statm of `mm`, in pages: size resident shared text lib data dt. Shared counts
 * the resident pages of file and shared mappings, data the private writable mappings and the
 * stacks, and text the program's code range, as Linux's task_statm (fs/proc/task_mmu.c) does. lib
 * and dt are always 0 since Linux 2.6.
 */
export function formatStatm(mm: MemoryManager): string {
  let shared = 0;
  let data = 0;
  for (const vma of mm.vmas.items) {
    if (vma.shared || vma.ino !== 0n) shared += mm.residentBytesIn(vma.start, vma.end);
    if (vma.growsDown || (!vma.shared && (vma.prot & PROT_WRITE) !== 0)) data += vma.end - vma.start;
  }
  const code = codeRange(mm);
  const fields = [mm.mappedBytes(), mm.residentBytes(), shared, code.end - code.start, 0, data, 0];
  return `${fields.map((bytes) => Math.ceil(bytes / PAGE_SIZE)).join(' ')}\n`;
}

/**
 * Converts a dev_t as stat returns it (glibc's encoding) to the 32-bit encoding of Linux's
 * new_encode_dev, which stat's tty_nr uses: minor bits 0-7, major bits 8-19, upper minor bits 20-31.
 */
function encodeDevice(dev: bigint): number {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

function kilobytes(bytes: number): string {
  return `${String(Math.floor(bytes / 1024)).padStart(8)} kB`;
}

function mask(value: bigint): string {
  return value.toString(16).padStart(16, '0');
}

/** Formats /proc/PID/status of `task`, with the lines ps, top and libraries read. */
export function formatStatus(task: Task, reader: Task | undefined): string {
  const group = task.threadGroup;
  const creds = task.creds;
  const mm = task.mm;
  const masks = signalMasks(task);
  const queued = countBits(masks.pending) + countBits(masks.shared);
  const lines = [
    `Name:\t${task.name}`,
    `Umask:\t${task.fs.umask.toString(8).padStart(4, '0')}`,
    `State:\t${STATE_NAMES[taskState(task, reader)]}`,
    `Tgid:\t${group.tgid}`,
    'Ngid:\t0',
    `Pid:\t${task.tid}`,
    `PPid:\t${parentPid(group)}`,
    'TracerPid:\t0',
    `Uid:\t${creds.uid}\t${creds.euid}\t${creds.suid}\t${creds.fsuid}`,
    `Gid:\t${creds.gid}\t${creds.egid}\t${creds.sgid}\t${creds.fsgid}`,
    `FDSize:\t${group.zombie ? 0 : Math.max(64, task.fdTable.openFds().reduce((max, fd) => Math.max(max, fd + 1), 0))}`,
    `Groups:\t${creds.groups.join(' ')}`,
    `NStgid:\t${group.tgid}`,
    `NSpid:\t${task.tid}`,
    `NSpgid:\t${group.pgid}`,
    `NSsid:\t${group.sid}`,
    // A zombie has no memory, and Linux leaves out the Vm lines.
    ...(group.zombie ? [] : [`VmSize:\t${kilobytes(mm.mappedBytes())}`, `VmRSS:\t${kilobytes(mm.residentBytes())}`]),
    `Threads:\t${group.tasks.size}`,
    `SigQ:\t${queued}/${SIGNAL_QUEUE_LIMIT}`,
    `SigPnd:\t${mask(masks.pending)}`,
    `ShdPnd:\t${mask(masks.shared)}`,
    `SigBlk:\t${mask(masks.blocked)}`,
    `SigIgn:\t${mask(masks.ignored)}`,
    `SigCgt:\t${mask(masks.caught)}`,
  ];
  return `${lines.join('\n')}\n`;
}

function countBits(value: bigint): number {
  let count = 0;
  for (let rest = value; rest !== 0n; rest &= rest - 1n) count++;
  return count;
}

function readRange(mm: MemoryManager, start: number, end: number): Buffer {
  if (start === 0 || end <= start) return Buffer.alloc(0);
  try {
    return Buffer.from(mm.copyIn(start, Math.min(end - start, MAX_STRINGS_BYTES)));
  } catch {
    // The process unmapped its stack strings: Linux returns what it can read, here nothing.
    return Buffer.alloc(0);
  }
}

/**
 * Reads /proc/PID/cmdline from the process's memory. When the process overwrote the NUL that
 * ends its last argument (setproctitle), Linux reads on into the environment up to the first NUL,
 * and so does this.
 */
export function readCmdline(mm: MemoryManager): Buffer {
  const args = readRange(mm, mm.argStart, mm.argEnd);
  if (args.length === 0 || args[args.length - 1] === 0) return args;
  const all = readRange(mm, mm.argStart, mm.envEnd);
  const end = all.indexOf(0);
  return end < 0 ? all : all.subarray(0, end);
}

/** Reads /proc/PID/environ from the process's memory. */
export function readEnviron(mm: MemoryManager): Buffer {
  return readRange(mm, mm.envStart, mm.envEnd);
}

/** Converts a monotonic time to clock ticks since `bootTimeNs`. */
export function ticksSince(bootTimeNs: bigint, timeNs: bigint): bigint {
  const elapsed = timeNs > bootTimeNs ? timeNs - bootTimeNs : 0n;
  return (elapsed * CLOCK_TICKS_PER_SECOND) / 1_000_000_000n;
}
