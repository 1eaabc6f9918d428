/**
 * Credential rules shared by the kernel and the system calls: the privilege test and the
 * RLIMIT_NPROC check that fork and clone make.
 */
import { Errno, fail } from '../errno.js';
import { RLIM_INFINITY, Rlimit } from './limits.js';
import type { Credentials, Task } from './task.js';

/**
 * Whether the credentials carry CAP_SETUID, CAP_SETGID and CAP_SYS_RESOURCE. Linux clears the
 * effective capabilities when the effective uid leaves 0 and restores them when it returns, so
 * without capset or SECURE_KEEP_CAPS (neither is supported) they are present exactly when the
 * effective uid is 0.
 */
export function isPrivileged(creds: Credentials): boolean {
  return creds.euid === 0;
}

/**
 * Throws EAGAIN when `task` may not create another task because its real user already has
 * RLIMIT_NPROC tasks (threads included) in the sandbox. Real uid 0 and privileged callers are
 * exempt, as on Linux.
 * NOTE: Linux also counts zombies until they are reaped; only live tasks are counted here.
 */
export function checkProcessLimit(task: Task): void {
  const limit = task.limits.get(Rlimit.NPROC).cur;
  const uid = task.creds.uid;
  if (limit === RLIM_INFINITY || uid === 0 || isPrivileged(task.creds)) return;
  let count = 0n;
  for (const other of task.kernel.tasks.values()) {
    if (other.creds.uid === uid) count++;
  }
  if (count >= limit) fail(Errno.EAGAIN);
}

/** Returns the ids of the Node process, which the sandbox's init starts with. */
export function hostCredentials(): Credentials {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const euid = process.geteuid?.() ?? uid;
  const egid = process.getegid?.() ?? gid;
  const groups = [...new Set(process.getgroups?.() ?? [])].sort((a, b) => a - b);
  return { uid, gid, euid, egid, suid: euid, sgid: egid, fsuid: euid, fsgid: egid, groups };
}
