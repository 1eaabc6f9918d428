/**
 * @tsvisor/platform-kvm registers the "kvm" platform when it is loaded. The application runs in
 * ring 3 of a KVM guest. A tiny guest kernel turns its system calls and exceptions into exits to
 * the host, where the sentry handles them.
 */
import { registerPlatform } from '@tsvisor/platform-api';
import { KvmPlatform } from './platform.js';
import { isNested, probe } from './probe.js';

export { KvmPlatform, DEFAULT_SPIN_MICROSECONDS } from './platform.js';
export { KvmAddressSpace } from './address-space.js';
export { KvmContext } from './context.js';

registerPlatform({
  name: 'kvm',
  description: 'application in guest ring 3 of a KVM virtual machine; fastest on bare metal, needs /dev/kvm',
  // Inside a virtual machine KVM is nested and every exit costs far more, so systrap (20) goes first.
  rank: () => (isNested() ? 15 : 30),
  probe,
  create: (options) => new KvmPlatform(options),
});
