/** Whether the KVM platform can run on this host, and if not, why. */
import type { ProbeResult } from '@tsvisor/platform-api';
import { loadNative } from './native.js';

export function probe(): ProbeResult {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { available: false, reason: `the kvm platform needs Linux on x86-64, this is ${process.platform} on ${process.arch}` };
  }

  let native;
  try {
    native = loadNative();
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { available: false, reason: `its native addon is not built (${message}); run "npm run build" in @tsvisor/platform-kvm` };
  }
  const nestedVirtualization = native.hostIsVirtualMachine();
  const failure = native.probe();
  return { available: failure === '', reason: failure, nestedVirtualization };
}

/** Reports whether this host is itself a virtual machine, so that KVM would be nested. */
export function isNested(): boolean {
  try {
    return loadNative().hostIsVirtualMachine();
  } catch {
    return false;
  }
}
