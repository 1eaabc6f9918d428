/**
 * A thread group: what Linux calls a process. Its tasks share the thread group id, the exit
 * status, the parent and children, the process group and session, and the resource limits.
 *
 * A thread group lives from the clone that creates it until its parent reaps it with wait4 or
 * waitid. Between the exit of its last task and the reaping it is a zombie: it keeps its tgid, its
 * exit status and that last task, whose memory and descriptors are released.
 */
import type { ResourceLimits } from './limits.js';
import type { Terminal } from './terminal.js';
import type { ExitStatus, Task } from './task.js';

/** SIGCHLD, the signal a child created by fork sends its parent when it changes state. */
export const SIGCHLD = 17;

/** A state change of a child that wait4 and waitid report. */
export type ChildEvent =
  | { readonly kind: 'exited'; readonly status: ExitStatus }
  | { readonly kind: 'stopped'; readonly signal: number }
  | { readonly kind: 'continued' };

export class ThreadGroup {
  readonly tasks = new Set<Task>();
  readonly children = new Set<ThreadGroup>();
  /** Process group id and session id. */
  pgid: number;
  sid: number;
  /** The parent process, or undefined for the sandbox's init. Reparenting changes it. */
  parent: ThreadGroup | undefined;
  /**
   * The controlling terminal, inherited from the parent. setsid and TIOCNOTTY clear it.
   * NOTE: a child made with CLONE_PARENT inherits its new parent's, not its creator's.
   */
  tty: Terminal | undefined;

  /**
   * Set when the group starts to exit (exit_group, a fatal signal, or the exit of its last
   * thread). Every task leaves its loop once this is set.
   */
  exitStatus: ExitStatus | undefined;
  /** Set when the last task has gone: the group is a zombie until its parent reaps it. */
  zombie = false;
  /**
   * The task that exited last, kept while the group is a zombie so that /proc can still show its
   * name, ids and credentials. Its memory and descriptors are released.
   */
  lastTask: Task | undefined;
  /** Set once execve succeeded, because setpgid on a child that has exec'd fails with EACCES. */
  execed = false;

  /**
   * A stop or continue that the parent has not collected yet. The signal code sets it through
   * reportStop and reportContinue when the group stops or resumes.
   */
  pendingStop: number | undefined;
  pendingContinue = false;

  /** Callbacks of wait4/waitid calls of this group's tasks, run when a child changes state. */
  private readonly childWaiters = new Set<() => void>();

  constructor(
    readonly tgid: number,
    parent: ThreadGroup | undefined,
    /** The signal sent to the parent on exit: SIGCHLD for fork, the low byte of clone's flags otherwise. */
    readonly exitSignal: number,
    readonly limits: ResourceLimits,
  ) {
    this.parent = parent;
    this.pgid = parent?.pgid ?? tgid;
    this.sid = parent?.sid ?? tgid;
    this.tty = parent?.tty;
  }

  /** The thread group leader, or another live task when the leader has exited, or undefined. */
  get anyTask(): Task | undefined {
    for (const task of this.tasks) {
      if (task.tid === this.tgid) return task;
    }
    return this.tasks.values().next().value;
  }

  /**
   * Starts the exit of the whole group with `status`, unless it is exiting already. Every task is
   * marked as exiting and interrupted wherever it is.
   */
  beginExit(status: ExitStatus): void {
    if (this.exitStatus !== undefined) return;
    this.exitStatus = status;
    for (const task of this.tasks) task.requestExit();
  }

  /** Records that the group stopped on `signal` and wakes the parent's wait4 and waitid calls. */
  reportStop(signal: number): void {
    this.pendingContinue = false;
    this.pendingStop = signal;
    this.parent?.wakeChildWaiters();
  }

  /** Records that the group continued after a stop and wakes the parent's wait4 and waitid calls. */
  reportContinue(): void {
    this.pendingStop = undefined;
    this.pendingContinue = true;
    this.parent?.wakeChildWaiters();
  }

  /** Registers `wake` to run on the next state change of a child; returns its removal. */
  addChildWaiter(wake: () => void): () => void {
    this.childWaiters.add(wake);
    return () => this.childWaiters.delete(wake);
  }

  wakeChildWaiters(): void {
    const waiters = [...this.childWaiters];
    this.childWaiters.clear();
    for (const wake of waiters) wake();
  }
}
