/**
 * @tsvisor/platform-systrap registers the "systrap" platform when it is loaded. Each address space
 * is a stub process whose threads run application code under a seccomp filter that turns every
 * system call into SIGSYS. The stub's signal handler leaves the signal frame in memory shared
 * with the sentry, which reads and edits it in place. No ptrace stop lies on the system call path.
 */
import { registerPlatform } from '@tsvisor/platform-api';
import { SystrapPlatform } from './platform.js';
import { probe } from './probe.js';

export { SystrapPlatform, DEFAULT_SPIN_MICROSECONDS } from './platform.js';
export { SystrapAddressSpace } from './address-space.js';
export { SystrapContext } from './context.js';
export { StubDestroyedError } from './errors.js';

registerPlatform({
  name: 'systrap',
  description: 'seccomp SECCOMP_RET_TRAP with signal frames in shared memory; needs no ptrace, faster than ptrace',
  rank: () => 20,
  probe,
  create: (options) => new SystrapPlatform(options),
});
