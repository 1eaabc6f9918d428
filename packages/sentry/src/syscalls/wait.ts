/**
 * wait4 and waitid: collecting the state changes of child processes. A caller finds the first
 * matching child that exited (a zombie), stopped or continued. When there is none but children
 * exist, it waits through Task.block until a child changes state, unless WNOHANG is set.
 * Children belong to the thread group, so any thread of the parent may collect them.
 */
import { Errno, fail } from '../errno.js';
import { reap } from '../kernel/exit.js';
import type { Task } from '../kernel/task.js';
import { type ChildEvent, SIGCHLD, type ThreadGroup } from '../kernel/thread-group.js';
import { registerSyscall } from './table.js';

const WNOHANG = 0x1;
const WSTOPPED = 0x2;
const WEXITED = 0x4;
const WCONTINUED = 0x8;
const WNOWAIT = 0x01000000;
const WNOTHREAD = 0x20000000;
const WALL = 0x40000000;
const WCLONE = 0x80000000 | 0;

const WAIT4_OPTIONS = WNOHANG | WSTOPPED | WCONTINUED | WNOTHREAD | WALL | WCLONE;
const WAITID_OPTIONS = WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE;

const P_ALL = 0;
const P_PID = 1;
const P_PGID = 2;

/** si_code values of SIGCHLD, from <asm-generic/siginfo.h>. */
const CLD_EXITED = 1;
const CLD_KILLED = 2;
const CLD_STOPPED = 5;
const CLD_CONTINUED = 6;

const SIGCONT = 18;

const SIGINFO_SIZE = 128;
const RUSAGE_SIZE = 144;

/** The children a call waits for (all of them, one pid, or one process group) and its options. */
interface WaitRequest {
  readonly kind: 'all' | 'pid' | 'pgid';
  readonly id: number;
  readonly options: number;
}

interface Found {
  readonly child: ThreadGroup;
  readonly event: ChildEvent;
}

function selects(request: WaitRequest, child: ThreadGroup): boolean {
  if (request.kind === 'pid' && child.tgid !== request.id) return false;
  if (request.kind === 'pgid' && child.pgid !== request.id) return false;
  // A "clone" child reports to its parent with a signal other than SIGCHLD (or none).
  const cloneChild = child.exitSignal !== SIGCHLD;
  if ((request.options & WALL) !== 0) return true;
  return ((request.options & WCLONE) !== 0) === cloneChild;
}

function eventOf(request: WaitRequest, child: ThreadGroup): ChildEvent | undefined {
  if (child.zombie) {
    return (request.options & WEXITED) !== 0 && child.exitStatus !== undefined ? { kind: 'exited', status: child.exitStatus } : undefined;
  }
  if ((request.options & WSTOPPED) !== 0 && child.pendingStop !== undefined) return { kind: 'stopped', signal: child.pendingStop };
  if ((request.options & WCONTINUED) !== 0 && child.pendingContinue) return { kind: 'continued' };
  return undefined;
}

/** Returns a reportable child, null when matching children exist but none is ready; ECHILD without any. */
function findChild(task: Task, request: WaitRequest): Found | null {
  let matched = false;
  for (const child of task.threadGroup.children) {
    if (!selects(request, child)) continue;
    matched = true;
    const event = eventOf(request, child);
    if (event !== undefined) return { child, event };
  }
  if (!matched) fail(Errno.ECHILD);
  return null;
}

/** Marks the event as collected unless WNOWAIT is set. A collected zombie is reaped. */
function consume(task: Task, request: WaitRequest, found: Found): void {
  if ((request.options & WNOWAIT) !== 0) return;
  const { child, event } = found;
  if (event.kind === 'exited') reap(task.kernel, child);
  else if (event.kind === 'stopped') child.pendingStop = undefined;
  else child.pendingContinue = false;
}

/**
 * Finds and collects a child event with `report`, waiting for one unless WNOHANG is set. Returns
 * `report`'s result, or `none` when WNOHANG found nothing ready.
 */
function waitForChild(task: Task, request: WaitRequest, report: (found: Found) => number, none: () => number): number | Promise<number> {
  const found = findChild(task, request);
  if (found !== null) {
    const result = report(found);
    consume(task, request, found);
    return result;
  }
  if ((request.options & WNOHANG) !== 0) return none();
  return task
    .block<void>((resolve) => task.threadGroup.addChildWaiter(resolve))
    .then(() => waitForChild(task, request, report, none));
}

function waitStatus(event: ChildEvent): number {
  switch (event.kind) {
    case 'exited':
      return event.status.signal !== undefined ? event.status.signal & 0x7f : ((event.status.code ?? 0) & 0xff) << 8;
    case 'stopped':
      return (event.signal << 8) | 0x7f;
    case 'continued':
      return 0xffff;
  }
}

function writeRusage(task: Task, addr: number): void {
  // NOTE: per-process CPU time is not accounted, so the child's resource usage reads as zero.
  if (addr !== 0) task.mm.copyOut(addr, new Uint8Array(RUSAGE_SIZE));
}

function wait4(task: Task, pidBits: number, statusAddr: number, optionBits: number, rusage: number): number | Promise<number> {
  const pid = pidBits | 0;
  const options = optionBits | 0;
  if ((options & ~WAIT4_OPTIONS) !== 0) fail(Errno.EINVAL);
  let request: WaitRequest;
  if (pid === -1) request = { kind: 'all', id: 0, options: options | WEXITED };
  else if (pid === 0) request = { kind: 'pgid', id: task.threadGroup.pgid, options: options | WEXITED };
  else if (pid < 0) request = { kind: 'pgid', id: -pid, options: options | WEXITED };
  else request = { kind: 'pid', id: pid, options: options | WEXITED };

  return waitForChild(task, request, (found) => {
    if (statusAddr !== 0) {
      const bytes = Buffer.alloc(4);
      bytes.writeInt32LE(waitStatus(found.event));
      task.mm.copyOut(statusAddr, bytes);
    }
    writeRusage(task, rusage);
    return found.child.tgid;
  }, () => 0);
}

function childSigInfo(task: Task, found: Found): Buffer {
  const info = Buffer.alloc(SIGINFO_SIZE);
  const { event } = found;
  let code = CLD_CONTINUED;
  // A continued child reports SIGCONT as its status.
  let status = SIGCONT;
  if (event.kind === 'exited') {
    code = event.status.signal !== undefined ? CLD_KILLED : CLD_EXITED;
    status = event.status.signal ?? event.status.code ?? 0;
  } else if (event.kind === 'stopped') {
    code = CLD_STOPPED;
    status = event.signal;
  }
  info.writeInt32LE(SIGCHLD, 0);
  info.writeInt32LE(code, 8);
  info.writeInt32LE(found.child.tgid, 16);
  info.writeUInt32LE(task.creds.uid >>> 0, 20);
  info.writeInt32LE(status, 24);
  return info;
}

function waitid(task: Task, idType: number, idBits: number, infoAddr: number, optionBits: number, rusage: number): number | Promise<number> {
  const options = optionBits | 0;
  const id = idBits | 0;
  if ((options & ~WAITID_OPTIONS) !== 0 || (options & (WEXITED | WSTOPPED | WCONTINUED)) === 0) fail(Errno.EINVAL);
  let request: WaitRequest;
  switch (idType | 0) {
    case P_ALL:
      request = { kind: 'all', id: 0, options };
      break;
    case P_PID:
      if (id <= 0) fail(Errno.EINVAL);
      request = { kind: 'pid', id, options };
      break;
    case P_PGID:
      if (id < 0) fail(Errno.EINVAL);
      request = { kind: 'pgid', id: id === 0 ? task.threadGroup.pgid : id, options };
      break;
    default:
      return fail(Errno.EINVAL);
  }

  return waitForChild(task, request, (found) => {
    if (infoAddr !== 0) task.mm.copyOut(infoAddr, childSigInfo(task, found));
    writeRusage(task, rusage);
    return 0;
  }, () => {
    // With WNOHANG and nothing to report, Linux clears si_signo, si_pid and the fields around them.
    if (infoAddr !== 0) task.mm.copyOut(infoAddr, new Uint8Array(32));
    return 0;
  });
}

registerSyscall('wait4', wait4, {
  args: ['int', 'ptr', 'hex', 'ptr'],
  support: 'partial',
  note: 'the resource usage of children is reported as zero',
});
registerSyscall('waitid', waitid, {
  args: ['int', 'int', 'ptr', 'hex', 'ptr'],
  support: 'partial',
  note: 'P_PIDFD is not supported; the resource usage of children is reported as zero',
});
