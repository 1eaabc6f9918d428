/**
 * A task: one thread of a sandboxed program, with its registers and its platform context. It may
 * share state with other tasks: the memory manager (CLONE_VM), the descriptor table
 * (CLONE_FILES), the file system context (CLONE_FS) and its thread group (CLONE_THREAD).
 *
 * A task that waits (wait4, futex, a read of an empty pipe) does so through block(), which
 * returns a promise, so that the task loop awaits it and the other tasks keep running. Code that
 * needs the task's attention calls interrupt(): a blocked wait then ends with ERESTARTSYS and a
 * switch into application code returns Interrupted.
 */
import { Registers, type Context } from '@tsvisor/platform-api';
import { ERESTARTSYS, SysError } from '../errno.js';
import type { FaultRecord, MemoryManager } from '../mm/memory-manager.js';
import type { FdTable } from '../vfs/fd-table.js';
import type { FsContext } from '../vfs/fs-context.js';
import type { Kernel } from './kernel.js';
import type { ResourceLimits } from './limits.js';
import { SignalState } from './signal-state.js';
import type { ThreadGroup } from './thread-group.js';

/** User and group ids of a task. */
export interface Credentials {
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  suid: number;
  sgid: number;
  /** File system ids, which file permission checks use; they follow the effective ids unless setfsuid/setfsgid set them. */
  fsuid: number;
  fsgid: number;
  /** Supplementary group ids, sorted; replaced as a whole, never changed in place. */
  groups: readonly number[];
}

/** Exit status of a thread group: an exit code from exit/exit_group, or a terminating signal. */
export interface ExitStatus {
  readonly code?: number;
  readonly signal?: number;
}

export interface TaskInit {
  readonly tid: number;
  readonly threadGroup: ThreadGroup;
  readonly mm: MemoryManager;
  readonly fdTable: FdTable;
  readonly fs: FsContext;
  readonly exePath: string;
  readonly creds: Credentials;
  readonly signals?: SignalState;
  /** The task's platform context, when the creator made it already; otherwise the task makes one. */
  readonly context?: Context;
}

/** Cancels a wait that block() started. */
export type CancelWait = () => void;

export class Task {
  readonly tid: number;
  readonly threadGroup: ThreadGroup;
  readonly regs = new Registers();
  readonly context: Context;
  mm: MemoryManager;
  fdTable: FdTable;
  fs: FsContext;
  /** Sandbox path of the executable, for /proc/self/exe and AT_EXECFN. */
  exePath: string;
  creds: Credentials;
  signals: SignalState;

  /** This thread's last resolved fault, used to detect a fault that the platform cannot resolve. */
  readonly lastFault: FaultRecord = { mm: undefined, page: -1, access: -1, generation: -1 };

  /** set_tid_address and CLONE_CHILD_CLEARTID: cleared and futex-woken when the thread exits. */
  clearChildTid = 0;
  /** set_robust_list: head of the robust futex list and its length, walked when the thread exits. */
  robustListHead = 0;
  robustListLength = 0;
  /** Monotonic time at which the task was created, in nanoseconds, for starttime in /proc/PID/stat. */
  readonly startTimeNs = process.hrtime.bigint();
  /** prctl PR_SET_NAME, at most 15 bytes. */
  name: string;

  /**
   * Set when the task must leave its loop: it called exit, or its thread group is exiting. The
   * loop checks it after every switch and system call.
   */
  exiting = false;
  /** The code passed to exit, which becomes the group's status when this is the last thread. */
  exitCode = 0;
  /**
   * Set when something other than a system call result needs the task loop's attention before
   * the next switch, such as a signal to deliver. The signal code sets and clears it.
   */
  attention = false;
  /** Run once when this task, created by vfork, execs or exits, to let its parent continue. */
  vforkDone: (() => void) | undefined;

  /**
   * Called once by requestExit(), so the task loop can abandon a system call whose wait cannot
   * be cancelled. The loop sets it around each blocking call.
   */
  onDeath: (() => void) | undefined;

  private cancelWait: CancelWait | undefined;
  private rejectWait: ((error: unknown) => void) | undefined;

  constructor(
    readonly kernel: Kernel,
    init: TaskInit,
  ) {
    this.tid = init.tid;
    this.threadGroup = init.threadGroup;
    this.mm = init.mm;
    this.fdTable = init.fdTable;
    this.fs = init.fs;
    this.exePath = init.exePath;
    this.creds = init.creds;
    this.signals = init.signals ?? new SignalState();
    this.name = init.exePath.slice(init.exePath.lastIndexOf('/') + 1).slice(0, 15);
    this.regs.reset();
    this.context = init.context ?? kernel.platform.newContext();
  }

  get tgid(): number {
    return this.threadGroup.tgid;
  }

  /**
   * The status the task's thread group ends with, once the task is exiting, and undefined before.
   * For a thread that called exit alone, it is that thread's exit code.
   */
  get exitStatus(): ExitStatus | undefined {
    if (!this.exiting) return undefined;
    return this.threadGroup.exitStatus ?? { code: this.exitCode };
  }

  /** Resource limits of the thread group. */
  get limits(): ResourceLimits {
    return this.threadGroup.limits;
  }

  /** Ends the whole thread group with an exit code (exit_group). */
  exitGroup(code: number): void {
    this.threadGroup.beginExit({ code: code & 0xff });
  }

  /** Ends the whole thread group as if killed by `signal`. */
  killGroup(signal: number): void {
    this.threadGroup.beginExit({ signal });
  }

  /** Ends this thread only (exit); the group ends with `code` when this was its last thread. */
  exitThread(code: number): void {
    this.exitCode = code & 0xff;
    this.requestExit();
  }

  /** Makes the task leave its loop as soon as possible, wherever it is. */
  requestExit(): void {
    if (this.exiting) return;
    this.exiting = true;
    const onDeath = this.onDeath;
    this.onDeath = undefined;
    onDeath?.();
    this.interrupt();
  }

  /** Whether the task is waiting in block(), which /proc shows as state S (sleeping). */
  get sleeping(): boolean {
    return this.cancelWait !== undefined;
  }

  /**
   * Gets the task's attention: a wait in block() ends with ERESTARTSYS and a running switch
   * returns Interrupted. Safe to call at any time.
   */
  interrupt(): void {
    const cancel = this.cancelWait;
    const reject = this.rejectWait;
    if (cancel !== undefined && reject !== undefined) {
      this.cancelWait = undefined;
      this.rejectWait = undefined;
      cancel();
      reject(new SysError(ERESTARTSYS));
      return;
    }
    this.context.interrupt();
  }

  /**
   * Waits for an event without blocking other tasks. `start` begins the wait, calls `resolve`
   * when the event happens, and returns a function that cancels the wait. interrupt() cancels
   * it and rejects with SysError(ERESTARTSYS), which the signal code turns into EINTR or a
   * restart. When the task is already exiting or has a signal to handle, the wait does not start.
   */
  block<T>(start: (resolve: (value: T) => void, reject: (error: unknown) => void) => CancelWait): Promise<T> {
    if (this.exiting || this.attention) return Promise.reject(new SysError(ERESTARTSYS));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (): boolean => {
        if (settled) return false;
        settled = true;
        this.cancelWait = undefined;
        this.rejectWait = undefined;
        return true;
      };
      const cancel = start(
        (value) => {
          if (finish()) resolve(value);
        },
        (error) => {
          if (finish()) reject(error);
        },
      );
      if (settled) return;
      this.cancelWait = () => {
        settled = true;
        cancel();
      };
      this.rejectWait = reject;
    });
  }

  /** Frees the task's platform context. The caller releases shared state it owns. */
  release(): void {
    this.context.release();
  }
}
