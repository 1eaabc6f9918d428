/**
 * A task: one thread of a sandboxed program, with its registers, its platform context, and the
 * state it shares with the other threads of its thread group (memory, descriptors, file system
 * context). Only one task per process exists so far, but nothing here assumes it: clone will
 * create tasks that share `mm`, `fdTable` and `fs` by reference.
 */
import { Registers, type Context } from '@tsvisor/platform-api';
import type { MemoryManager } from '../mm/memory-manager.js';
import type { FdTable } from '../vfs/fd-table.js';
import type { FsContext } from '../vfs/fs-context.js';
import type { Kernel } from './kernel.js';
import { ResourceLimits } from './limits.js';
import { SignalState } from './signal-state.js';

/** User and group ids of a task. */
export interface Credentials {
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  suid: number;
  sgid: number;
}

/** Exit status of a thread group: an exit code from exit/exit_group, or a terminating signal. */
export interface ExitStatus {
  readonly code?: number;
  readonly signal?: number;
}

export interface TaskInit {
  readonly tid: number;
  readonly tgid: number;
  readonly mm: MemoryManager;
  readonly fdTable: FdTable;
  readonly fs: FsContext;
  readonly exePath: string;
  readonly creds: Credentials;
}

export class Task {
  readonly tid: number;
  readonly tgid: number;
  readonly regs = new Registers();
  readonly context: Context;
  mm: MemoryManager;
  fdTable: FdTable;
  fs: FsContext;
  /** Sandbox path of the executable, for /proc/self/exe and AT_EXECFN. */
  exePath: string;
  creds: Credentials;
  readonly signals = new SignalState();
  /** Resource limits, shared by the thread group once threads exist. */
  readonly limits = new ResourceLimits();

  /** set_tid_address: cleared and futex-woken when the thread exits. */
  clearChildTid = 0;
  /** set_robust_list: head of the robust futex list and its length, kept for exit handling. */
  robustListHead = 0;
  robustListLength = 0;
  /** prctl PR_SET_NAME, at most 15 bytes. */
  name: string;

  /** Set once the thread group is exiting; the task loop stops after the current system call. */
  exitStatus: ExitStatus | undefined;

  constructor(
    readonly kernel: Kernel,
    init: TaskInit,
  ) {
    this.tid = init.tid;
    this.tgid = init.tgid;
    this.mm = init.mm;
    this.fdTable = init.fdTable;
    this.fs = init.fs;
    this.exePath = init.exePath;
    this.creds = init.creds;
    this.name = init.exePath.slice(init.exePath.lastIndexOf('/') + 1).slice(0, 15);
    this.regs.reset();
    this.context = kernel.platform.newContext();
  }

  /** Ends the whole thread group with an exit code (exit_group, and exit of the last thread). */
  exitGroup(code: number): void {
    this.exitStatus ??= { code: code & 0xff };
  }

  /** Ends the whole thread group as if killed by `signal`. */
  killGroup(signal: number): void {
    this.exitStatus ??= { signal };
  }

  /** Frees the task's platform context. The caller releases shared state it owns. */
  release(): void {
    this.context.release();
  }
}
