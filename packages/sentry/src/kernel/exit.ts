/**
 * The end of a task and of its thread group. When a task leaves its loop, exitTask clears and
 * wakes its clear_child_tid futex, releases the robust futexes it held, and drops its context and
 * its shares of memory and descriptors. The last task of a thread group makes the group a zombie:
 * its children go to init, and its parent gets the exit signal and can reap it with wait4.
 *
 * When init exits, every other thread group of the sandbox is killed, as when the init of a pid
 * namespace dies on Linux.
 */
import createDebug from 'debug';
import { SysError } from '../errno.js';
import type { Kernel } from './kernel.js';
import { dropFdTable, dropMemory, userCount } from './shared-resources.js';
import { sendGroupSignal } from './signal-delivery.js';
import { newSigInfo, type SigInfo, SigInfoField } from './signals/siginfo.js';
import { groupSignalsOf } from './signals/state.js';
import type { ExitStatus, Task } from './task.js';
import { SIGCHLD, type ThreadGroup } from './thread-group.js';

const log = createDebug('tsvisor:sentry:task');

const SIG_IGN = 1n;
const SA_NOCLDWAIT = 0x2n;

/** si_code of SIGCHLD for a child that exited or was killed, from <asm-generic/siginfo.h>. */
const CLD_EXITED = 1;
const CLD_KILLED = 2;

const FUTEX_WAITERS = 0x80000000;
const FUTEX_OWNER_DIED = 0x40000000;
const FUTEX_TID_MASK = 0x3fffffff;
/** Maximum number of robust list entries walked, so a corrupt, circular list cannot hang the exit. */
const ROBUST_LIST_LIMIT = 2048;

function isIgnorable(error: unknown): boolean {
  return error instanceof SysError;
}

/** Writes 0 to the thread's clear_child_tid word and wakes one waiter, as pthread_join expects. */
function clearChildTid(task: Task): void {
  const addr = task.clearChildTid;
  if (addr === 0) return;
  task.clearChildTid = 0;
  try {
    task.mm.copyOut(addr, new Uint8Array(4));
  } catch (error) {
    if (!isIgnorable(error)) throw error;
    return;
  }
  task.kernel.futexes.wake(task.mm, addr, 1);
}

/** Marks one robust futex owned by `task` as owner-died and wakes a waiter. */
function releaseRobustFutex(task: Task, addr: number): void {
  const word = task.mm.copyIn(addr, 4);
  const value = word.readUInt32LE(0);
  if ((value & FUTEX_TID_MASK) !== task.tid) return;
  word.writeUInt32LE(((value & FUTEX_WAITERS) | FUTEX_OWNER_DIED) >>> 0, 0);
  task.mm.copyOut(addr, word);
  if ((value & FUTEX_WAITERS) !== 0) task.kernel.futexes.wake(task.mm, addr, 1);
}

/** Walks the robust list registered with set_robust_list (struct robust_list_head). */
function releaseRobustList(task: Task): void {
  const head = task.robustListHead;
  if (head === 0) return;
  task.robustListHead = 0;
  try {
    const header = task.mm.copyIn(head, 24);
    const offset = Number(header.readBigInt64LE(8));
    const pending = Number(header.readBigUInt64LE(16) & ~1n);
    let entry = Number(header.readBigUInt64LE(0) & ~1n);
    for (let count = 0; entry !== head && entry !== 0 && count < ROBUST_LIST_LIMIT; count++) {
      const next = Number(task.mm.copyIn(entry, 8).readBigUInt64LE(0) & ~1n);
      if (entry !== pending) releaseRobustFutex(task, entry + offset);
      entry = next;
    }
    if (pending !== 0) releaseRobustFutex(task, pending + offset);
  } catch (error) {
    if (!isIgnorable(error)) throw error;
  }
}

/** Returns whether the parent requested no zombies: SIGCHLD ignored or SA_NOCLDWAIT. */
function parentReapsAutomatically(group: ThreadGroup): boolean {
  const parentTask = group.parent?.anyTask;
  if (parentTask === undefined || group.exitSignal !== SIGCHLD) return false;
  const action = parentTask.signals.actions[SIGCHLD - 1];
  return action.handler === SIG_IGN || (action.flags & SA_NOCLDWAIT) !== 0n;
}

/** Removes a zombie from the pid namespace and from its parent's children. */
export function reap(kernel: Kernel, group: ThreadGroup): void {
  group.parent?.children.delete(group);
  kernel.threadGroups.delete(group.tgid);
}

/** Gives the children of an exiting group to init; zombies among them are reported to init. */
function reparentChildren(group: ThreadGroup, init: ThreadGroup | undefined): void {
  let zombies = false;
  for (const child of group.children) {
    child.parent = init;
    init?.children.add(child);
    if (child.zombie) zombies = true;
  }
  group.children.clear();
  if (zombies) init?.wakeChildWaiters();
}

/** Builds the siginfo of the signal a child's exit sends its parent: which child exited, and how. */
function exitSigInfo(group: ThreadGroup, status: ExitStatus, uid: number): SigInfo {
  const info = newSigInfo(group.exitSignal, status.signal === undefined ? CLD_EXITED : CLD_KILLED);
  info.writeInt32LE(group.tgid, SigInfoField.pid);
  info.writeUInt32LE(uid >>> 0, SigInfoField.uid);
  info.writeInt32LE(status.signal ?? status.code ?? 0, SigInfoField.status);
  return info;
}

/** Turns a group whose last task has gone into a zombie and notifies its parent. */
function finishGroup(task: Task, group: ThreadGroup): void {
  const kernel = task.kernel;
  const status: ExitStatus = group.exitStatus ?? { code: task.exitCode };
  group.exitStatus = status;
  group.zombie = true;
  groupSignalsOf(group).release();
  if (log.enabled) log('thread group %d exited with %o', group.tgid, status);

  if (group === kernel.init) {
    kernel.initExited(status);
    return;
  }
  reparentChildren(group, kernel.init);

  const parent = group.parent;
  if (parent === undefined || parentReapsAutomatically(group)) {
    reap(kernel, group);
    parent?.wakeChildWaiters();
    return;
  }
  // Wake waiting wait4 calls before the signal interrupts them, so that they return the child
  // instead of EINTR, as on Linux.
  parent.wakeChildWaiters();
  if (group.exitSignal !== 0) sendGroupSignal(parent, group.exitSignal, undefined, exitSigInfo(group, status, task.creds.uid));
}

/**
 * Cleans up after `task` left its loop. The task must not be inside a switch. The group's
 * children are handed to init before the group becomes a zombie.
 */
export function exitTask(task: Task): void {
  const kernel = task.kernel;
  const group = task.threadGroup;

  task.vforkDone?.();
  task.vforkDone = undefined;
  // Robust futexes may live in memory shared with other processes, so every exit releases them.
  // clear_child_tid only matters to threads that still use this memory.
  releaseRobustList(task);
  if (userCount(task.mm) > 1) clearChildTid(task);

  group.tasks.delete(task);
  if (group.tasks.size === 0) group.lastTask = task;
  kernel.tasks.delete(task.tid);
  try {
    task.release();
  } finally {
    dropMemory(task.mm);
    dropFdTable(task.fdTable);
  }

  if (group.tasks.size === 0) {
    const init = kernel.init;
    if (group === init) reparentChildren(group, undefined);
    finishGroup(task, group);
  }
}
