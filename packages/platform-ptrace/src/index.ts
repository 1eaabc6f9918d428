/**
 * @tsvisor/platform-ptrace registers the "ptrace" platform when it is loaded. Each address space is
 * a stub process and each context a thread in it, resumed with PTRACE_SYSEMU so that every system
 * call stops in the tracer instead of reaching the host kernel.
 */
import { registerPlatform } from '@tsvisor/platform-api';
import { PtracePlatform } from './platform.js';
import { probe } from './probe.js';

export { PtracePlatform, DEFAULT_SPIN_MICROSECONDS } from './platform.js';
export { PtraceAddressSpace } from './address-space.js';
export { PtraceContext } from './context.js';

registerPlatform({
  name: 'ptrace',
  description: 'PTRACE_SYSEMU on stub processes; runs wherever ptrace is allowed, slowest of the platforms',
  rank: () => 10,
  probe,
  create: (options) => new PtracePlatform(options),
});
