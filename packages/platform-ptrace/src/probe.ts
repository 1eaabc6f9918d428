/** Whether the ptrace platform can run on this host, and if not, why. */
import type { ProbeResult } from '@tsvisor/platform-api';
import { loadNative } from './native.js';

export function probe(): ProbeResult {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { available: false, reason: `the ptrace platform needs Linux on x86-64, this is ${process.platform} on ${process.arch}` };
  }

  let failure: string;
  try {
    failure = loadNative().probe();
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { available: false, reason: `its native addon is not built (${message}); run "npm run build" in @tsvisor/platform-ptrace` };
  }
  if (failure === '') return { available: true, reason: '' };

  if (failure.includes('PTRACE_TRACEME') && /EPERM|EACCES/.test(failure)) {
    return { available: false, reason: `ptrace is forbidden here, by a seccomp filter or a container policy (${failure})` };
  }
  return { available: false, reason: `starting a stub process failed: ${failure}` };
}
