/**
 * Whether the systrap platform can run on this host, and if not, why. systrap uses no ptrace at
 * all, so Yama's ptrace_scope does not restrict it. It needs seccomp filters with
 * SECCOMP_RET_TRAP, memfd_create, CLONE_PIDFD and close_range, which Linux 5.9 and later have.
 */
import type { ProbeResult } from '@tsvisor/platform-api';
import { loadNative } from './native.js';

export function probe(): ProbeResult {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { available: false, reason: `the systrap platform needs Linux on x86-64, this is ${process.platform} on ${process.arch}` };
  }

  let failure: string;
  try {
    failure = loadNative().probe();
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { available: false, reason: `its native addon is not built (${message}); run "npm run build" in @tsvisor/platform-systrap` };
  }
  if (failure === '') return { available: true, reason: '' };
  return { available: false, reason: failure.replace(/^systrap[^:]*: /, '') };
}
