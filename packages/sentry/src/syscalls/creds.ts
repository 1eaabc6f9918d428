/**
 * Credentials: setuid, setgid, setreuid, setregid, setresuid, setresgid, setfsuid, setfsgid,
 * setgroups and getgroups, with Linux's rules. A privileged caller (effective uid 0) may set any
 * id. Others may only move ids among their current real, effective and saved ids, and get EPERM
 * otherwise. Every change of the effective id also sets the file system id, which file permission
 * checks use.
 * NOTE: Linux keeps credentials per thread and libc broadcasts a change to every thread. Here the
 * threads of a thread group share one credentials object, so a raw system call changes them all.
 */
import { Errno, fail } from '../errno.js';
import { isPrivileged } from '../kernel/credentials.js';
import type { Credentials, Task } from '../kernel/task.js';
import { registerSyscall } from './table.js';

/** The id that the set*id calls take to mean "leave unchanged", (uid_t)-1. */
const UNCHANGED = 0xffffffff;

/** NGROUPS_MAX from <linux/limits.h>. */
const NGROUPS_MAX = 65536;

/** The real, effective, saved and file system ids of one kind, so that uids and gids share the rules. */
interface IdSet {
  real: number;
  effective: number;
  saved: number;
  fs: number;
}

function userIds(creds: Credentials): IdSet {
  return { real: creds.uid, effective: creds.euid, saved: creds.suid, fs: creds.fsuid };
}

function groupIds(creds: Credentials): IdSet {
  return { real: creds.gid, effective: creds.egid, saved: creds.sgid, fs: creds.fsgid };
}

function storeUserIds(creds: Credentials, ids: IdSet): void {
  creds.uid = ids.real;
  creds.euid = ids.effective;
  creds.suid = ids.saved;
  creds.fsuid = ids.fs;
}

function storeGroupIds(creds: Credentials, ids: IdSet): void {
  creds.gid = ids.real;
  creds.egid = ids.effective;
  creds.sgid = ids.saved;
  creds.fsgid = ids.fs;
}

function isCurrent(old: IdSet, id: number): boolean {
  return id === old.real || id === old.effective || id === old.saved;
}

/** setuid and setgid: a privileged caller sets all ids, others only the effective one. */
function setId(old: IdSet, id: number, privileged: boolean): IdSet {
  if (id === UNCHANGED) fail(Errno.EINVAL);
  if (privileged) return { real: id, effective: id, saved: id, fs: id };
  if (id !== old.real && id !== old.saved) fail(Errno.EPERM);
  return { ...old, effective: id, fs: id };
}

/**
 * setreuid and setregid. The saved id follows the new effective id when the real id is set, or
 * when the effective id is set to something other than the old real id.
 */
function setRealEffective(old: IdSet, real: number, effective: number, privileged: boolean): IdSet {
  const next = { ...old };
  if (real !== UNCHANGED) {
    if (!privileged && real !== old.real && real !== old.effective) fail(Errno.EPERM);
    next.real = real;
  }
  if (effective !== UNCHANGED) {
    if (!privileged && !isCurrent(old, effective)) fail(Errno.EPERM);
    next.effective = effective;
  }
  if (real !== UNCHANGED || (effective !== UNCHANGED && effective !== old.real)) next.saved = next.effective;
  next.fs = next.effective;
  return next;
}

/** setresuid and setresgid: each id given must be one of the current three unless privileged. */
function setRealEffectiveSaved(old: IdSet, real: number, effective: number, saved: number, privileged: boolean): IdSet {
  for (const id of [real, effective, saved]) {
    if (id !== UNCHANGED && !privileged && !isCurrent(old, id)) fail(Errno.EPERM);
  }
  const next = { ...old };
  if (real !== UNCHANGED) next.real = real;
  if (effective !== UNCHANGED) next.effective = effective;
  if (saved !== UNCHANGED) next.saved = saved;
  next.fs = next.effective;
  return next;
}

/**
 * setfsuid and setfsgid: they return the old file system id whether or not they change it, and
 * change it only to one of the current ids unless the caller is privileged.
 */
function setFsId(old: IdSet, id: number, privileged: boolean): IdSet | undefined {
  if (id === UNCHANGED) return undefined;
  if (!privileged && !isCurrent(old, id) && id !== old.fs) return undefined;
  return { ...old, fs: id };
}

function setgroups(task: Task, sizeBits: number, addr: number): number {
  if (!isPrivileged(task.creds)) fail(Errno.EPERM);
  const size = sizeBits >>> 0;
  if (size > NGROUPS_MAX) fail(Errno.EINVAL);
  const bytes = size === 0 ? Buffer.alloc(0) : task.mm.copyIn(addr, size * 4);
  const groups: number[] = [];
  for (let i = 0; i < size; i++) groups.push(bytes.readUInt32LE(i * 4));
  // Linux sorts the list, and getgroups returns it sorted.
  groups.sort((a, b) => a - b);
  task.creds.groups = groups;
  return 0;
}

function getgroups(task: Task, sizeBits: number, addr: number): number {
  const size = sizeBits | 0;
  if (size < 0) fail(Errno.EINVAL);
  const groups = task.creds.groups;
  if (size === 0) return groups.length;
  if (size < groups.length) fail(Errno.EINVAL);
  const bytes = Buffer.alloc(groups.length * 4);
  groups.forEach((gid, i) => bytes.writeUInt32LE(gid, i * 4));
  if (bytes.length > 0) task.mm.copyOut(addr, bytes);
  return groups.length;
}

registerSyscall('setuid', (task, uid) => {
  storeUserIds(task.creds, setId(userIds(task.creds), uid >>> 0, isPrivileged(task.creds)));
  return 0;
}, { args: ['int'] });
registerSyscall('setgid', (task, gid) => {
  storeGroupIds(task.creds, setId(groupIds(task.creds), gid >>> 0, isPrivileged(task.creds)));
  return 0;
}, { args: ['int'] });
registerSyscall('setreuid', (task, ruid, euid) => {
  storeUserIds(task.creds, setRealEffective(userIds(task.creds), ruid >>> 0, euid >>> 0, isPrivileged(task.creds)));
  return 0;
}, { args: ['int', 'int'] });
registerSyscall('setregid', (task, rgid, egid) => {
  storeGroupIds(task.creds, setRealEffective(groupIds(task.creds), rgid >>> 0, egid >>> 0, isPrivileged(task.creds)));
  return 0;
}, { args: ['int', 'int'] });
registerSyscall('setresuid', (task, ruid, euid, suid) => {
  const next = setRealEffectiveSaved(userIds(task.creds), ruid >>> 0, euid >>> 0, suid >>> 0, isPrivileged(task.creds));
  storeUserIds(task.creds, next);
  return 0;
}, { args: ['int', 'int', 'int'] });
registerSyscall('setresgid', (task, rgid, egid, sgid) => {
  const next = setRealEffectiveSaved(groupIds(task.creds), rgid >>> 0, egid >>> 0, sgid >>> 0, isPrivileged(task.creds));
  storeGroupIds(task.creds, next);
  return 0;
}, { args: ['int', 'int', 'int'] });
registerSyscall('setfsuid', (task, uid) => {
  const old = userIds(task.creds);
  const next = setFsId(old, uid >>> 0, isPrivileged(task.creds));
  if (next !== undefined) storeUserIds(task.creds, next);
  return old.fs;
}, { args: ['int'] });
registerSyscall('setfsgid', (task, gid) => {
  const old = groupIds(task.creds);
  const next = setFsId(old, gid >>> 0, isPrivileged(task.creds));
  if (next !== undefined) storeGroupIds(task.creds, next);
  return old.fs;
}, { args: ['int'] });
registerSyscall('setgroups', setgroups, { args: ['int', 'ptr'] });
registerSyscall('getgroups', getgroups, { args: ['int', 'ptr'] });
