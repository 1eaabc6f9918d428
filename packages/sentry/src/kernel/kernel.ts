/**
 * The kernel: what every task of one sandbox shares. It owns the platform instance and the memory
 * file, and releases both in close(), whatever state the tasks are in.
 */
import type { Platform } from '@tsvisor/platform-api';
import { MemoryFile } from '../memory/memory-file.js';
import type { MemoryLayout } from '../mm/memory-manager.js';
import type { Vfs } from '../vfs/vfs.js';

export interface KernelOptions {
  /** Receives one line per system call, as `--strace` prints it. */
  readonly strace?: (line: string) => void;
}

/** Size of the main thread's stack VMA, as RLIMIT_STACK's default soft limit. */
export const STACK_SIZE = 8 * 1024 * 1024;

/** The lowest address Linux lets a program map by default (vm.mmap_min_addr). */
const MMAP_MIN_ADDR = 0x10000;

/** Top of user memory on x86-64 with 4-level page tables, less the guard page Linux keeps. */
const TASK_SIZE = 0x7ffffffff000;

/** Distance between the top of the stack and the first mmap, as Linux's minimum stack gap. */
const MMAP_GAP = 128 * 1024 * 1024;

export class Kernel {
  readonly memoryFile: MemoryFile;
  readonly layout: MemoryLayout;
  /** Top of the main thread's stack. */
  readonly stackTop: number;
  /** Monotonic time at which the kernel started, in nanoseconds, for sysinfo's uptime. */
  readonly bootTime = process.hrtime.bigint();
  /** The sentry's CPU time when the kernel started, in microseconds, for the CPU-time clocks. */
  readonly cpuTimeAtStartUs = BigInt(process.cpuUsage().user + process.cpuUsage().system);

  private nextTid = 1;
  private closed = false;

  constructor(
    readonly platform: Platform,
    readonly vfs: Vfs,
    readonly options: KernelOptions = {},
  ) {
    this.memoryFile = new MemoryFile();
    const maxAddress = Math.min(platform.maxUserAddress, TASK_SIZE);
    this.stackTop = maxAddress;
    this.layout = {
      minAddress: Math.max(platform.minUserAddress, MMAP_MIN_ADDR),
      maxAddress,
      mmapTop: maxAddress - STACK_SIZE - MMAP_GAP,
    };
  }

  /** Returns a new thread id; the first task of the sandbox is 1, as init in a pid namespace. */
  allocateTid(): number {
    return this.nextTid++;
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
