/**
 * Resource limits (getrlimit, setrlimit, prlimit64) of a thread group, with Linux's defaults for a
 * process started by init. The sandbox's init starts with the host's limits instead.
 * NOTE: only RLIMIT_NPROC (fork and clone), RLIMIT_MEMLOCK, RLIMIT_DATA and RLIMIT_STACK are
 * enforced. RLIMIT_STACK is read at execve only, where it places the stack and the mmap area. The
 * descriptor table does not check RLIMIT_NOFILE.
 */
import { Errno } from '../errno.js';

/** RLIM_INFINITY as the kernel stores it (all 64 bits set). */
export const RLIM_INFINITY = 0xffffffffffffffffn;

export const Rlimit = {
  CPU: 0,
  FSIZE: 1,
  DATA: 2,
  STACK: 3,
  CORE: 4,
  RSS: 5,
  NPROC: 6,
  NOFILE: 7,
  MEMLOCK: 8,
  AS: 9,
  LOCKS: 10,
  SIGPENDING: 11,
  MSGQUEUE: 12,
  NICE: 13,
  RTPRIO: 14,
  RTTIME: 15,
} as const;

export const RLIM_NLIMITS = 16;

export interface Limit {
  cur: bigint;
  max: bigint;
}

export class ResourceLimits {
  readonly limits: Limit[];

  constructor() {
    const unlimited = (): Limit => ({ cur: RLIM_INFINITY, max: RLIM_INFINITY });
    this.limits = Array.from({ length: RLIM_NLIMITS }, unlimited);
    this.limits[Rlimit.STACK] = { cur: 8n * 1024n * 1024n, max: RLIM_INFINITY };
    this.limits[Rlimit.CORE] = { cur: 0n, max: RLIM_INFINITY };
    this.limits[Rlimit.NOFILE] = { cur: 1024n, max: 1048576n };
    this.limits[Rlimit.MEMLOCK] = { cur: 8n * 1024n * 1024n, max: 8n * 1024n * 1024n };
    this.limits[Rlimit.MSGQUEUE] = { cur: 819200n, max: 819200n };
    this.limits[Rlimit.NICE] = { cur: 0n, max: 0n };
    this.limits[Rlimit.RTPRIO] = { cur: 0n, max: 0n };
  }

  /** Returns a copy for a new process, which inherits its parent's limits. */
  copy(): ResourceLimits {
    const copy = new ResourceLimits();
    this.limits.forEach((limit, resource) => {
      copy.limits[resource] = { cur: limit.cur, max: limit.max };
    });
    return copy;
  }

  get(resource: number): Limit {
    return this.limits[resource];
  }

  /** Sets a limit. `privileged` allows raising the hard limit, as CAP_SYS_RESOURCE does. Returns 0 or -errno. */
  set(resource: number, limit: Limit, privileged: boolean): number {
    if (limit.cur > limit.max) return -Errno.EINVAL;
    if (limit.max > this.limits[resource].max && !privileged) return -Errno.EPERM;
    this.limits[resource] = { cur: limit.cur, max: limit.max };
    return 0;
  }
}
