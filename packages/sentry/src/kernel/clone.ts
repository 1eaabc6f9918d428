/**
 * clone: creates a task that shares or copies each part of its creator's state, as its flags select.
 * fork copies the memory (copy-on-write, through MemoryManager.fork), the descriptor table and the
 * file system context. A thread (CLONE_VM | CLONE_THREAD | CLONE_SIGHAND ...) shares all of them
 * and joins its creator's thread group. vfork shares the memory and keeps the parent waiting until
 * the child calls execve or exits.
 */
import { isPlatformLimitError, type AddressSpace, type Context } from '@tsvisor/platform-api';
import { Errno, fail } from '../errno.js';
import type { MemoryManager } from '../mm/memory-manager.js';
import { FdTable } from '../vfs/fd-table.js';
import { checkProcessLimit } from './credentials.js';
import { holdFdTable, holdMemory } from './shared-resources.js';
import { SignalState } from './signal-state.js';
import { startTask } from './task-loop.js';
import { Task } from './task.js';
import { ThreadGroup } from './thread-group.js';

export const CloneFlag = {
  CSIGNAL: 0xff,
  VM: 0x100,
  FS: 0x200,
  FILES: 0x400,
  SIGHAND: 0x800,
  PIDFD: 0x1000,
  PTRACE: 0x2000,
  VFORK: 0x4000,
  PARENT: 0x8000,
  THREAD: 0x10000,
  NEWNS: 0x20000,
  SYSVSEM: 0x40000,
  SETTLS: 0x80000,
  PARENT_SETTID: 0x100000,
  CHILD_CLEARTID: 0x200000,
  DETACHED: 0x400000,
  UNTRACED: 0x800000,
  CHILD_SETTID: 0x1000000,
  NEWCGROUP: 0x2000000,
  NEWUTS: 0x4000000,
  NEWIPC: 0x8000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
  IO: 0x80000000,
} as const;

/** Namespace flags: the sandbox has one namespace of each kind, so these are rejected. */
const NAMESPACE_FLAGS = CloneFlag.NEWNS | CloneFlag.NEWCGROUP | CloneFlag.NEWUTS | CloneFlag.NEWIPC
  | CloneFlag.NEWUSER | CloneFlag.NEWPID | CloneFlag.NEWNET;

const SS_DISABLE = 2;

export interface CloneRequest {
  /** The 32 low flag bits; the exit signal is passed separately. */
  readonly flags: number;
  readonly exitSignal: number;
  /** New stack pointer, or 0 to keep the creator's. */
  readonly stack: number;
  readonly parentTid: number;
  readonly childTid: number;
  readonly tls: number;
  /** clone3's CLONE_CLEAR_SIGHAND: the child starts with every handler reset to SIG_DFL. */
  readonly clearSignalHandlers?: boolean;
}

function has(flags: number, flag: number): boolean {
  return (flags & flag) !== 0;
}

function checkFlags(task: Task, request: CloneRequest): void {
  const { flags } = request;
  if (has(flags, CloneFlag.THREAD) && !has(flags, CloneFlag.SIGHAND)) fail(Errno.EINVAL);
  if (has(flags, CloneFlag.SIGHAND) && !has(flags, CloneFlag.VM)) fail(Errno.EINVAL);
  if (has(flags, NAMESPACE_FLAGS)) fail(Errno.EINVAL);
  if (has(flags, CloneFlag.PIDFD)) fail(Errno.EINVAL);
  if (request.clearSignalHandlers && has(flags, CloneFlag.SIGHAND)) fail(Errno.EINVAL);
  if (request.exitSignal < 0 || request.exitSignal > 64) fail(Errno.EINVAL);
  // init of a pid namespace cannot create siblings: it has no parent inside the namespace.
  if (has(flags, CloneFlag.PARENT) && task.threadGroup === task.kernel.init) fail(Errno.EINVAL);
}

function writeTid(task: Task, addr: number, tid: number): void {
  const bytes = Buffer.alloc(4);
  bytes.writeInt32LE(tid);
  task.mm.copyOut(addr, bytes);
}

function childSignals(task: Task, request: CloneRequest): SignalState {
  const parent = task.signals;
  const actions = has(request.flags, CloneFlag.SIGHAND)
    ? parent.actions
    : parent.actions.map((action) => (request.clearSignalHandlers && action.handler !== 1n
      ? { handler: 0n, flags: 0n, restorer: 0n, mask: 0n }
      : { ...action }));
  const signals = new SignalState(actions);
  signals.blocked = parent.blocked;
  // A thread with its own stack must not inherit the creator's alternate signal stack.
  const sharesStacks = has(request.flags, CloneFlag.VM) && !has(request.flags, CloneFlag.VFORK);
  signals.altStack = sharesStacks ? { sp: 0n, flags: SS_DISABLE, size: 0n } : { ...parent.altStack };
  return signals;
}

/**
 * Calls `create`, failing with EAGAIN when the platform has reached a limit, as clone does when a
 * thread or process limit is reached. Any other error is the platform's and propagates.
 */
function withinPlatformLimits<T>(create: () => T): T {
  try {
    return create();
  } catch (error) {
    if (isPlatformLimitError(error)) fail(Errno.EAGAIN);
    throw error;
  }
}

/**
 * Creates a task from `task` as clone(2) describes and starts it. Returns the new thread id, or
 * for CLONE_VFORK a promise of it that settles when the child calls execve or exits.
 */
export function cloneTask(task: Task, request: CloneRequest): number | Promise<number> {
  checkFlags(task, request);
  checkProcessLimit(task);
  const { flags } = request;
  const kernel = task.kernel;

  // The platform's resources come first, so that a platform limit fails the call before anything
  // else was created.
  const context: Context = withinPlatformLimits(() => kernel.platform.newContext());
  let addressSpace: AddressSpace | undefined;
  if (!has(flags, CloneFlag.VM)) {
    try {
      addressSpace = withinPlatformLimits(() => kernel.platform.newAddressSpace());
    } catch (error) {
      context.release();
      throw error;
    }
  }
  const tid = kernel.allocateTid();

  let mm: MemoryManager;
  try {
    mm = addressSpace === undefined ? task.mm : task.mm.fork(addressSpace);
  } catch (error) {
    addressSpace?.release();
    context.release();
    throw error;
  }
  let fdTable: FdTable;
  try {
    fdTable = has(flags, CloneFlag.FILES) ? task.fdTable : task.fdTable.fork();
  } catch (error) {
    if (mm !== task.mm) {
      mm.release();
      mm.addressSpace.release();
    }
    context.release();
    throw error;
  }
  holdMemory(mm);
  holdFdTable(fdTable);

  let group: ThreadGroup;
  if (has(flags, CloneFlag.THREAD)) {
    group = task.threadGroup;
  } else {
    const parent = has(flags, CloneFlag.PARENT) ? task.threadGroup.parent : task.threadGroup;
    group = new ThreadGroup(tid, parent, request.exitSignal, task.limits.copy());
    group.pgid = task.threadGroup.pgid;
    group.sid = task.threadGroup.sid;
    parent?.children.add(group);
    kernel.threadGroups.set(tid, group);
  }

  const child = new Task(kernel, {
    tid,
    threadGroup: group,
    mm,
    fdTable,
    fs: has(flags, CloneFlag.FS) ? task.fs : task.fs.clone(),
    exePath: task.exePath,
    // The threads of a group share credentials, so a change made by one applies to all.
    creds: has(flags, CloneFlag.THREAD) ? task.creds : { ...task.creds },
    signals: childSignals(task, request),
    context,
  });
  child.name = task.name;
  child.regs.copyFrom(task.regs);
  child.regs.rax = 0;
  if (request.stack !== 0) child.regs.rsp = request.stack;
  if (has(flags, CloneFlag.SETTLS)) child.regs.fs_base = request.tls;

  if (has(flags, CloneFlag.PARENT_SETTID)) writeTid(task, request.parentTid, tid);
  if (has(flags, CloneFlag.CHILD_SETTID)) writeTid(child, request.childTid, tid);
  if (has(flags, CloneFlag.CHILD_CLEARTID)) child.clearChildTid = request.childTid;

  let vforkDone: Promise<number> | undefined;
  if (has(flags, CloneFlag.VFORK)) {
    // Not interruptible by signals, as in Linux: the child borrows the parent's memory until then.
    vforkDone = new Promise((resolve) => {
      child.vforkDone = () => resolve(tid);
    });
  }
  // A group that is already exiting takes no new threads.
  if (group.exitStatus !== undefined) child.exiting = true;
  startTask(child);
  return vforkDone ?? tid;
}
