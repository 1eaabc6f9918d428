/**
 * The kernel: what every task of one sandbox shares. It owns the platform instance, the memory
 * file and the pid namespace (the tables of tasks and thread groups), and releases the platform
 * and the memory file in close(), whatever state the tasks are in.
 */
import type { Platform } from '@tsvisor/platform-api';
import { DEFAULT_CAPACITY, MemoryFile } from '../memory/memory-file.js';
import { computeLayout, DEFAULT_STACK_LIMIT, type MemoryLayout } from '../mm/layout.js';
import type { Vfs } from '../vfs/vfs.js';
import { FutexTable } from './futex.js';
import { killGroupBySignal } from './signals/send.js';
import type { ExitStatus, Task } from './task.js';
import type { Terminal } from './terminal.js';
import type { ThreadGroup } from './thread-group.js';

export interface KernelOptions {
  /** Receives one line per system call, as `--strace` prints it. */
  readonly strace?: (line: string) => void;
}

/** The lowest address Linux lets a program map by default (vm.mmap_min_addr). */
const MMAP_MIN_ADDR = 0x10000;

/** Top of user memory on x86-64 with 4-level page tables, less the guard page Linux keeps. */
const TASK_SIZE = 0x7ffffffff000;

/** Linux's default pid_max: ids wrap around below it, skipping ids still in use. */
const PID_MAX = 4194304;

/** After wrapping, ids start again above this, as Linux's RESERVED_PIDS. */
const RESERVED_PIDS = 300;

const SIGKILL = 9;

/** The memory file's capacity is a whole number of 1 GiB chunks. */
const CAPACITY_GRANULE = 2 ** 30;

/**
 * Returns the memory file's size limit: the default, or less when the platform cannot map that
 * much, so that running out of it is ENOMEM on every platform.
 */
function memoryFileCapacity(platform: Platform): number {
  const limit = platform.maxFileSize;
  if (typeof limit !== 'number' || !Number.isFinite(limit) || limit <= 0) return DEFAULT_CAPACITY;
  // NOTE: a limit below one chunk still gets one chunk, so such a platform can fail in mapFile.
  return Math.min(DEFAULT_CAPACITY, Math.max(CAPACITY_GRANULE, Math.floor(limit / CAPACITY_GRANULE) * CAPACITY_GRANULE));
}

export class Kernel {
  readonly memoryFile: MemoryFile;
  /**
   * The platform's usable address range, with the stack and mmap area placed for the default stack
   * limit. A new memory manager starts with it, and execve replaces it by the layout for the
   * process's RLIMIT_STACK.
   */
  readonly layout: MemoryLayout;
  /** Monotonic time at which the kernel started, in nanoseconds, for sysinfo's uptime. */
  readonly bootTime = process.hrtime.bigint();
  /** The sentry's CPU time when the kernel started, in microseconds, for the CPU-time clocks. */
  readonly cpuTimeAtStartUs = BigInt(process.cpuUsage().user + process.cpuUsage().system);

  readonly futexes = new FutexTable();
  /** Live tasks by thread id. */
  readonly tasks = new Map<number, Task>();
  /** Thread groups by thread group id, zombies included until they are reaped. */
  readonly threadGroups = new Map<number, ThreadGroup>();
  /** The thread group of pid 1, which adopts orphans; its exit ends the sandbox. */
  init: ThreadGroup | undefined;
  /** The controlling terminal of init's session, when the sandbox's stdio includes a terminal. */
  terminal: Terminal | undefined;
  /** Tasks created since the kernel started, threads included, as /proc/stat's processes line counts them. */
  tasksCreated = 0;

  /**
   * The process group that receives SIGINT when the user presses Ctrl-C on runsc: the foreground
   * process group of the sandbox's terminal, or init's process group when there is none.
   */
  get foregroundPgid(): number {
    const pgid = this.terminal?.foregroundPgid ?? 0;
    return pgid !== 0 ? pgid : (this.init?.pgid ?? 1);
  }

  /** The loops of running tasks, so that shutdown can wait for all of them. */
  readonly running = new Set<Promise<void>>();
  /** Resolves with init's exit status when the sandbox's init thread group has exited. */
  readonly initExit: Promise<ExitStatus>;

  private resolveInitExit: ((status: ExitStatus) => void) | undefined;
  private rejectInitExit: ((error: unknown) => void) | undefined;
  private nextTid = 1;
  private closed = false;

  constructor(
    readonly platform: Platform,
    readonly vfs: Vfs,
    readonly options: KernelOptions = {},
  ) {
    this.initExit = new Promise((resolve, reject) => {
      this.resolveInitExit = resolve;
      this.rejectInitExit = reject;
    });
    this.memoryFile = new MemoryFile(memoryFileCapacity(platform));
    const minAddress = Math.max(platform.minUserAddress, MMAP_MIN_ADDR);
    const maxAddress = Math.min(platform.maxUserAddress, TASK_SIZE);
    this.layout = computeLayout(minAddress, maxAddress, BigInt(DEFAULT_STACK_LIMIT));
  }

  /**
   * Returns a new thread id that no task, thread group, process group or session uses. The first
   * task of the sandbox gets 1, as init in a pid namespace does.
   */
  allocateTid(): number {
    for (;;) {
      const tid = this.nextTid;
      this.nextTid = tid + 1 >= PID_MAX ? RESERVED_PIDS : tid + 1;
      if (this.tasks.has(tid) || this.threadGroups.has(tid) || this.isProcessGroupOrSession(tid)) continue;
      this.tasksCreated++;
      return tid;
    }
  }

  /** Returns whether some thread group still uses `id` as its process group or session id. */
  isProcessGroupOrSession(id: number): boolean {
    for (const group of this.threadGroups.values()) {
      if (!group.zombie && (group.pgid === id || group.sid === id)) return true;
    }
    return false;
  }

  /**
   * Tests whether every member of process group `pgid` has its parent inside the group or outside
   * the session: no shell controls such an orphaned job, so Linux does not stop it on SIGTSTP,
   * SIGTTIN or SIGTTOU. Init has no parent in the sandbox, so its group counts as orphaned.
   */
  isOrphanedProcessGroup(pgid: number): boolean {
    for (const group of this.processGroup(pgid)) {
      const parent = group.parent;
      if (group.exitStatus !== undefined || parent === undefined) continue;
      if (parent.pgid !== pgid && parent.sid === group.sid) return false;
    }
    return true;
  }

  /** Live (not zombie) thread groups whose process group is `pgid`. */
  processGroup(pgid: number): ThreadGroup[] {
    return [...this.threadGroups.values()].filter((group) => !group.zombie && group.pgid === pgid);
  }

  /**
   * Records init's exit and kills every other thread group, as the death of a pid namespace's
   * init does on Linux.
   */
  initExited(status: ExitStatus): void {
    this.resolveInitExit?.(status);
    this.resolveInitExit = undefined;
    this.rejectInitExit = undefined;
    this.killAll();
  }

  /** Ends the sandbox because of an error inside the sentry; initExit rejects with it. */
  abort(error: unknown): void {
    this.rejectInitExit?.(error);
    this.resolveInitExit = undefined;
    this.rejectInitExit = undefined;
    this.killAll();
  }

  /** Kills every thread group of the sandbox with SIGKILL, stopped groups included. */
  killAll(): void {
    for (const group of this.threadGroups.values()) killGroupBySignal(group, SIGKILL);
  }

  /** Kills every task and waits until every task loop has ended. */
  async shutdown(): Promise<void> {
    this.killAll();
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Frees the platform (its processes, threads and descriptors) and the memory file. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.platform.close();
    } finally {
      this.memoryFile.close();
    }
  }
}
