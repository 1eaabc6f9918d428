/** clone, clone3, fork and vfork: the system calls that create tasks (see kernel/clone.ts). */
import { Errno, fail } from '../errno.js';
import { CloneFlag, cloneTask } from '../kernel/clone.js';
import type { Task } from '../kernel/task.js';
import { SIGCHLD } from '../kernel/thread-group.js';
import { registerSyscall } from './table.js';

/** sizeof(struct clone_args) in its first version, and in the latest one this sentry reads. */
const CLONE_ARGS_SIZE_VER0 = 64;
const CLONE_ARGS_SIZE_MAX = 88;

/** clone3-only flags above the 32 bits clone(2) has. */
const CLONE_CLEAR_SIGHAND = 0x100000000n;
const CLONE_INTO_CGROUP = 0x200000000n;

function unsignedLow32(value: number): number {
  return Number(BigInt.asUintN(32, BigInt(value)));
}

/** x86-64 argument order: clone(flags, stack, parent_tid, child_tid, tls). */
function clone(task: Task, flagBits: number, stack: number, parentTid: number, childTid: number, tls: number): number | Promise<number> {
  const flags = unsignedLow32(flagBits);
  return cloneTask(task, {
    flags: flags & ~CloneFlag.CSIGNAL,
    exitSignal: flags & CloneFlag.CSIGNAL,
    stack,
    parentTid,
    childTid,
    tls,
  });
}

function clone3(task: Task, addr: number, size: number): number | Promise<number> {
  if (size < CLONE_ARGS_SIZE_VER0) fail(Errno.EINVAL);
  const raw = Buffer.alloc(CLONE_ARGS_SIZE_MAX);
  task.mm.copyInto(addr, raw.subarray(0, Math.min(size, CLONE_ARGS_SIZE_MAX)));
  // A larger struct from a newer libc is accepted only when the fields this sentry ignores are zero.
  if (size > CLONE_ARGS_SIZE_MAX && task.mm.copyIn(addr + CLONE_ARGS_SIZE_MAX, size - CLONE_ARGS_SIZE_MAX).some((byte) => byte !== 0)) {
    fail(Errno.E2BIG);
  }

  const flags = raw.readBigUInt64LE(0);
  const exitSignal = raw.readBigUInt64LE(32);
  const stack = Number(raw.readBigUInt64LE(40));
  const stackSize = Number(raw.readBigUInt64LE(48));
  const setTidSize = raw.readBigUInt64LE(72);
  if ((flags & BigInt(CloneFlag.CSIGNAL)) !== 0n || exitSignal > 64n) fail(Errno.EINVAL);
  if ((flags & ~0xffffffffn & ~CLONE_CLEAR_SIGHAND) !== 0n || (flags & CLONE_INTO_CGROUP) !== 0n) fail(Errno.EINVAL);
  if (setTidSize !== 0n) fail(Errno.EINVAL);
  if ((stack === 0) !== (stackSize === 0)) fail(Errno.EINVAL);

  return cloneTask(task, {
    flags: Number(flags & 0xffffffffn),
    exitSignal: Number(exitSignal),
    // clone3 takes the lowest address and size of the stack; x86-64 stacks grow down from the top.
    stack: stack === 0 ? 0 : stack + stackSize,
    parentTid: Number(raw.readBigUInt64LE(24)),
    childTid: Number(raw.readBigUInt64LE(16)),
    tls: Number(raw.readBigUInt64LE(56)),
    clearSignalHandlers: (flags & CLONE_CLEAR_SIGHAND) !== 0n,
  });
}

const NAMESPACES_NOTE = 'namespace flags, CLONE_PIDFD, CLONE_INTO_CGROUP and set_tid return EINVAL';

registerSyscall('clone', clone, { args: ['hex', 'ptr', 'ptr', 'ptr', 'ptr'], support: 'partial', note: NAMESPACES_NOTE });
registerSyscall('clone3', clone3, { args: ['ptr', 'int'], support: 'partial', note: NAMESPACES_NOTE });
registerSyscall('fork', (task) => cloneTask(task, { flags: 0, exitSignal: SIGCHLD, stack: 0, parentTid: 0, childTid: 0, tls: 0 }));
registerSyscall('vfork', (task) => cloneTask(task, {
  flags: CloneFlag.VM | CloneFlag.VFORK,
  exitSignal: SIGCHLD,
  stack: 0,
  parentTid: 0,
  childTid: 0,
  tls: 0,
}));
