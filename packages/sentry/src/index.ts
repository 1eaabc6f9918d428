/** @tsvisor/sentry: the tsvisor application kernel and its embedding API. */
export { runSandbox, SandboxController, SandboxError, type SandboxOptions, type SandboxResult } from './sandbox.js';
export { syscallCoverage, type SyscallCoverage } from './syscalls/coverage.js';
