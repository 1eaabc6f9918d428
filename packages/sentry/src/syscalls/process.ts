/**
 * Process and thread identity: exit, exit_group, the pid/tid/uid family, process groups and
 * sessions, set_tid_address, set_robust_list, prctl and arch_prctl. The sandboxed program is pid 1
 * of its own pid namespace, as under gVisor, so its getppid returns 0.
 */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import type { ThreadGroup } from '../kernel/thread-group.js';
import { registerSyscall, registerUnimplemented } from './table.js';

/** sizeof(struct robust_list_head) on x86-64. */
const ROBUST_LIST_HEAD_SIZE = 24;

const PR_SET_PDEATHSIG = 1;
const PR_GET_PDEATHSIG = 2;
const PR_GET_DUMPABLE = 3;
const PR_SET_DUMPABLE = 4;
const PR_SET_NAME = 15;
const PR_GET_NAME = 16;
const PR_CAPBSET_READ = 23;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_GET_NO_NEW_PRIVS = 39;

const ARCH_SET_GS = 0x1001;
const ARCH_SET_FS = 0x1002;
const ARCH_GET_FS = 0x1003;
const ARCH_GET_GS = 0x1004;
const ARCH_GET_CPUID = 0x1011;

/** Highest capability number defined by Linux 6.x (CAP_CHECKPOINT_RESTORE). */
const CAP_LAST_CAP = 40;

/** Per-thread-group prctl state that has no other home yet. */
interface PrctlState {
  deathSignal: number;
  dumpable: number;
  noNewPrivileges: number;
}

const prctlStates = new WeakMap<Task, PrctlState>();

function prctlState(task: Task): PrctlState {
  let state = prctlStates.get(task);
  if (state === undefined) {
    state = { deathSignal: 0, dumpable: 1, noNewPrivileges: 0 };
    prctlStates.set(task, state);
  }
  return state;
}

function writeInt32(task: Task, addr: number, value: number): void {
  const bytes = Buffer.alloc(4);
  bytes.writeInt32LE(value);
  task.mm.copyOut(addr, bytes);
}

function writeUint64(task: Task, addr: number, value: number): void {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(value));
  task.mm.copyOut(addr, bytes);
}

/** Returns the caller's thread group for pid 0, or the live thread group `pid`; throws ESRCH otherwise. */
function findThreadGroup(task: Task, pid: number): ThreadGroup {
  if (pid === 0) return task.threadGroup;
  if (pid < 0) fail(Errno.ESRCH);
  const group = task.kernel.threadGroups.get(pid);
  if (group === undefined || group.zombie) fail(Errno.ESRCH);
  return group;
}

function setpgid(task: Task, pidBits: number, pgidBits: number): number {
  const pid = pidBits | 0;
  const pgid = pgidBits | 0;
  if (pgid < 0) fail(Errno.EINVAL);
  const caller = task.threadGroup;
  const target = findThreadGroup(task, pid);
  if (target !== caller && target.parent !== caller) fail(Errno.ESRCH);
  if (target !== caller && target.execed) fail(Errno.EACCES);
  if (target.sid !== caller.sid) fail(Errno.EPERM);
  if (target.sid === target.tgid) fail(Errno.EPERM);

  const newPgid = pgid === 0 ? target.tgid : pgid;
  // Joining another group needs a group of that id in the caller's session.
  if (newPgid !== target.tgid && !task.kernel.processGroup(newPgid).some((group) => group.sid === caller.sid)) fail(Errno.EPERM);
  target.pgid = newPgid;
  return 0;
}

function setsid(task: Task): number {
  const group = task.threadGroup;
  if (task.kernel.processGroup(group.tgid).length > 0) fail(Errno.EPERM);
  group.sid = group.tgid;
  group.pgid = group.tgid;
  // The new session starts without a controlling terminal.
  group.tty = undefined;
  return group.tgid;
}

function prctl(task: Task, option: number, arg2: number, arg3: number, arg4: number, arg5: number): number {
  const state = prctlState(task);
  switch (option | 0) {
    case PR_SET_PDEATHSIG:
      if (arg2 < 0 || arg2 > 64) fail(Errno.EINVAL);
      state.deathSignal = arg2;
      return 0;
    case PR_GET_PDEATHSIG:
      writeInt32(task, arg2, state.deathSignal);
      return 0;
    case PR_GET_DUMPABLE:
      return state.dumpable;
    case PR_SET_DUMPABLE:
      if (arg2 !== 0 && arg2 !== 1) fail(Errno.EINVAL);
      state.dumpable = arg2;
      return 0;
    case PR_SET_NAME: {
      const bytes = Buffer.from(task.mm.readCString(arg2, 4096));
      task.name = bytes.subarray(0, 15).toString();
      return 0;
    }
    case PR_GET_NAME: {
      const name = Buffer.alloc(16);
      name.write(task.name.slice(0, 15));
      task.mm.copyOut(arg2, name);
      return 0;
    }
    case PR_CAPBSET_READ:
      if (arg2 < 0 || arg2 > CAP_LAST_CAP) fail(Errno.EINVAL);
      return task.creds.euid === 0 ? 1 : 0;
    case PR_SET_NO_NEW_PRIVS:
      if (arg2 !== 1 || arg3 !== 0 || arg4 !== 0 || arg5 !== 0) fail(Errno.EINVAL);
      state.noNewPrivileges = 1;
      return 0;
    case PR_GET_NO_NEW_PRIVS:
      if (arg2 !== 0 || arg3 !== 0 || arg4 !== 0 || arg5 !== 0) fail(Errno.EINVAL);
      return state.noNewPrivileges;
    default:
      return -Errno.EINVAL;
  }
}

function archPrctl(task: Task, code: number, addr: number): number {
  const maxAddress = task.mm.layout.maxAddress;
  switch (code | 0) {
    case ARCH_SET_FS:
      if (addr < 0 || addr >= maxAddress) fail(Errno.EPERM);
      task.regs.fs_base = addr;
      return 0;
    case ARCH_SET_GS:
      if (addr < 0 || addr >= maxAddress) fail(Errno.EPERM);
      task.regs.gs_base = addr;
      return 0;
    case ARCH_GET_FS:
      writeUint64(task, addr, task.regs.fs_base);
      return 0;
    case ARCH_GET_GS:
      writeUint64(task, addr, task.regs.gs_base);
      return 0;
    case ARCH_GET_CPUID:
      // CPUID is never made to fault for sandboxed programs.
      return 1;
    default:
      return -Errno.EINVAL;
  }
}

registerSyscall('exit', (task, code) => {
  task.exitThread(code);
  return 0;
}, { args: ['int'] });
registerSyscall('exit_group', (task, code) => {
  task.exitGroup(code);
  return 0;
}, { args: ['int'] });

registerSyscall('getpid', (task) => task.tgid);
registerSyscall('gettid', (task) => task.tid);
registerSyscall('getppid', (task) => task.threadGroup.parent?.tgid ?? 0);
registerSyscall('getpgrp', (task) => task.threadGroup.pgid);
registerSyscall('getpgid', (task, pid) => findThreadGroup(task, pid | 0).pgid, { args: ['int'] });
registerSyscall('getsid', (task, pid) => findThreadGroup(task, pid | 0).sid, { args: ['int'] });
registerSyscall('setpgid', setpgid, { args: ['int', 'int'] });
registerSyscall('setsid', setsid);
registerSyscall('getuid', (task) => task.creds.uid);
registerSyscall('geteuid', (task) => task.creds.euid);
registerSyscall('getgid', (task) => task.creds.gid);
registerSyscall('getegid', (task) => task.creds.egid);
registerSyscall('getresuid', (task, ruid, euid, suid) => {
  writeInt32(task, ruid, task.creds.uid | 0);
  writeInt32(task, euid, task.creds.euid | 0);
  writeInt32(task, suid, task.creds.suid | 0);
  return 0;
}, { args: ['ptr', 'ptr', 'ptr'] });
registerSyscall('getresgid', (task, rgid, egid, sgid) => {
  writeInt32(task, rgid, task.creds.gid | 0);
  writeInt32(task, egid, task.creds.egid | 0);
  writeInt32(task, sgid, task.creds.sgid | 0);
  return 0;
}, { args: ['ptr', 'ptr', 'ptr'] });

registerSyscall('set_tid_address', (task, addr) => {
  task.clearChildTid = addr;
  return task.tid;
}, { args: ['ptr'] });
registerSyscall('set_robust_list', (task, head, length) => {
  if (length !== ROBUST_LIST_HEAD_SIZE) fail(Errno.EINVAL);
  task.robustListHead = head;
  task.robustListLength = length;
  return 0;
}, { args: ['ptr', 'int'] });
registerUnimplemented('rseq', 'restartable sequences are not supported; libc then uses plain system calls');

registerSyscall('prctl', prctl, {
  args: ['int', 'hex', 'hex', 'hex', 'hex'],
  support: 'partial',
  note: 'supports PR_SET/GET_NAME, PDEATHSIG, DUMPABLE, NO_NEW_PRIVS and PR_CAPBSET_READ; other options return EINVAL',
});
registerSyscall('arch_prctl', archPrctl, {
  args: ['hex', 'ptr'],
  support: 'partial',
  note: 'ARCH_SET_CPUID and the CET and AMX options return EINVAL',
});
