/**
 * The task loop switches into the application, handles what stopped it (a system call, a fault,
 * a signal or an interrupt), and repeats until the task exits. Every task of the sandbox runs its
 * own loop on the event loop, so a task waiting in a system call (a promise) lets the others run.
 *
 * The system call round trip is the hot path. When the platform returns synchronously and the
 * handler returns a number, an iteration allocates nothing and awaits nothing. Strace and debug
 * output are behind flags checked once per call. Because such iterations never yield, the loop
 * yields to the event loop every YIELD_INTERVAL synchronous calls so that timers, I/O callbacks
 * and other tasks still run while a program makes system calls in a tight loop.
 */
import createDebug from 'debug';
import { SwitchKind } from '@tsvisor/platform-api';
import { Errno, SysError } from '../errno.js';
import { Sys } from '../syscalls/numbers.js';
import { syscallName, syscallTable } from '../syscalls/table.js';
import { SI_USER, Signal } from './signals/constants.js';
import { raisePlatformSignal, raiseSegmentationFault } from './signals/faults.js';
import { sendToGroup } from './signals/send.js';
import { userSigInfo } from './signals/siginfo.js';
import { formatSyscall, signalName } from './strace.js';
import { exitTask } from './exit.js';
import { handleAttention, isRestartCode } from './signal-delivery.js';
import { handleLoopError, SwitchError } from './switch-errors.js';
import type { Task } from './task.js';

const syscallLog = createDebug('tsvisor:sentry:syscall');
const taskLog = createDebug('tsvisor:sentry:task');

const YIELD_INTERVAL = 1024;

/** The result of a raced wait when the task was killed before the system call finished. */
const DIED: unique symbol = Symbol('died');

/** Calls after which EPIPE (a write to a pipe without readers) also raises SIGPIPE, as in Linux. */
const SIGPIPE_CALLS = new Set<number>([Sys.write, Sys.writev, Sys.pwrite64, Sys.pwritev, Sys.pwritev2, Sys.sendfile, Sys.splice, Sys.tee, Sys.vmsplice]);

const reportedUnimplemented = new Set<number>();

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function toResult(error: unknown): number {
  if (error instanceof SysError) return -error.errno;
  throw error;
}

function unimplemented(nr: number): number {
  if (!reportedUnimplemented.has(nr)) {
    reportedUnimplemented.add(nr);
    const entry = syscallTable[nr];
    const reason = entry?.note === undefined ? 'not implemented' : `not implemented: ${entry.note}`;
    syscallLog('%s (%d) %s; returning ENOSYS', syscallName(nr), nr, reason);
  }
  return -Errno.ENOSYS;
}

/**
 * Per system call, a bit mask of the arguments declared as C int (formats 'fd' and 'signal'), or -1
 * before it is computed. libc may leave garbage in the upper half of a register that carries an
 * int: glibc passes AT_FDCWD as 0x00000000ffffff9c, for example. Linux reads only the low 32 bits,
 * so the dispatcher sign-extends those arguments before it calls the handler. Handlers
 * truncate their other int arguments themselves.
 */
const intArgMasks = new Int8Array(Math.max(syscallTable.length, 512)).fill(-1);

function intArgMask(nr: number): number {
  let mask = intArgMasks[nr];
  if (mask >= 0) return mask;
  mask = 0;
  syscallTable[nr]?.args?.forEach((format, index) => {
    if (format === 'fd' || format === 'signal') mask |= 1 << index;
  });
  intArgMasks[nr] = mask;
  return mask;
}

/** Runs the handler of the system call in `task.regs`; returns its result or a promise of it. */
function dispatch(task: Task, nr: number): number | Promise<number> {
  const handler = nr >= 0 ? syscallTable[nr]?.handler : undefined;
  if (handler === undefined) return unimplemented(nr);
  const regs = task.regs;
  let a0 = regs.rdi;
  let a1 = regs.rsi;
  let a2 = regs.rdx;
  let a3 = regs.r10;
  let a4 = regs.r8;
  let a5 = regs.r9;
  const mask = intArgMask(nr);
  if (mask !== 0) {
    if ((mask & 1) !== 0) a0 |= 0;
    if ((mask & 2) !== 0) a1 |= 0;
    if ((mask & 4) !== 0) a2 |= 0;
    if ((mask & 8) !== 0) a3 |= 0;
    if ((mask & 16) !== 0) a4 |= 0;
    if ((mask & 32) !== 0) a5 |= 0;
  }
  try {
    const result = handler(task, a0, a1, a2, a3, a4, a5);
    return typeof result === 'number' ? result : result.then(undefined, toResult);
  } catch (error) {
    return toResult(error);
  }
}

/** Runs a system call with strace output; the slow path, taken only when tracing is on. */
async function dispatchTraced(task: Task, nr: number, strace: (line: string) => void): Promise<number> {
  const regs = task.regs;
  const args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
  const pending = dispatch(task, nr);
  const result = typeof pending === 'number' ? pending : await pending;
  const entry = nr >= 0 ? syscallTable[nr] : undefined;
  strace(formatSyscall(task, nr, entry, args, task.exiting ? undefined : result));
  return result;
}

function signalNumber(info: Uint8Array): number {
  return info[0] | (info[1] << 8) | (info[2] << 16) | (info[3] << 24);
}

/**
 * Waits for a blocking system call, or for the task's death, whichever comes first, so that a
 * killed task leaves even a wait that cannot be cancelled. The death callback lives in one slot
 * of the task, so millions of blocking calls do not pile up callbacks on a long-lived promise.
 */
function raceDeath(task: Task, pending: Promise<number>): Promise<number | typeof DIED> {
  if (task.exiting) return Promise.resolve(DIED);
  return new Promise((resolve, reject) => {
    task.onDeath = () => resolve(DIED);
    pending.then(
      (result) => {
        task.onDeath = undefined;
        resolve(result);
      },
      (error: unknown) => {
        task.onDeath = undefined;
        reject(error);
      },
    );
  });
}

/** Runs `task` until it exits. */
export async function runTask(task: Task): Promise<void> {
  const { context, regs } = task;
  const strace = task.kernel.options.strace;
  let syncCalls = 0;

  while (!task.exiting) {
    if (task.attention) {
      const waiting = handleAttention(task, undefined);
      if (waiting !== undefined) await waiting;
      if (task.exiting) break;
    }
    let kind: SwitchKind;
    try {
      const switched = context.switch(task.mm.addressSpace, regs);
      kind = typeof switched === 'number' ? switched : await switched;
    } catch (error) {
      throw new SwitchError(task.kernel.platform.name, error);
    }
    if (task.exiting) break;

    switch (kind) {
      case SwitchKind.Syscall: {
        const nr = regs.orig_rax;
        const pending = strace === undefined ? dispatch(task, nr) : dispatchTraced(task, nr, strace);
        let result: number;
        if (typeof pending === 'number') {
          result = pending;
          if (++syncCalls === YIELD_INTERVAL) {
            syncCalls = 0;
            await yieldToEventLoop();
          }
        } else {
          const settled = await raceDeath(task, pending);
          if (settled === DIED) break;
          result = settled;
          syncCalls = 0;
        }
        if (task.exiting) break;
        regs.rax = result;
        if (result === -Errno.EPIPE && SIGPIPE_CALLS.has(nr)) {
          sendToGroup(task.threadGroup, userSigInfo(Signal.SIGPIPE, SI_USER, task.tgid, task.creds.uid), task);
        }
        if (task.attention || isRestartCode(result)) {
          const waiting = handleAttention(task, result);
          if (waiting !== undefined) await waiting;
        }
        break;
      }

      case SwitchKind.Fault: {
        const addr = context.faultAddress;
        const access = context.faultAccess;
        if (task.mm.handleFault(addr, access, task.lastFault)) break;
        if (taskLog.enabled) taskLog('task %d: segmentation fault at 0x%s (access %d), rip 0x%s', task.tid, addr.toString(16), access, regs.rip.toString(16));
        raiseSegmentationFault(task, addr, access);
        break;
      }

      case SwitchKind.Signal: {
        if (taskLog.enabled) taskLog('task %d: %s at rip 0x%s', task.tid, signalName(signalNumber(context.signalInfo)), regs.rip.toString(16));
        raisePlatformSignal(task, context.signalInfo);
        break;
      }

      case SwitchKind.Interrupted:
        // interrupt() was called: the loop's checks of `exiting` and `attention` do the rest.
        break;

      default:
        throw new Error(`platform ${task.kernel.platform.name} returned an unknown switch result ${String(kind)}`);
    }
  }
}

/**
 * Starts `task`'s loop on the event loop and cleans up after the task when the loop ends. An
 * error inside the sentry or the platform kills the sandbox and is reported through the kernel,
 * except a stub the program destroyed, which kills only its thread group (see switch-errors.ts).
 */
export function startTask(task: Task): void {
  const kernel = task.kernel;
  kernel.tasks.set(task.tid, task);
  task.threadGroup.tasks.add(task);
  // The loop starts once the creator's system call has returned, not inside it.
  const loop = Promise.resolve()
    .then(() => runTask(task))
    .catch((error: unknown) => handleLoopError(task, error))
    .then(() => exitTask(task))
    .catch((error: unknown) => kernel.abort(error))
    .finally(() => kernel.running.delete(loop));
  kernel.running.add(loop);
}
