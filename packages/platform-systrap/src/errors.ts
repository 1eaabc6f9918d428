/** Errors of the systrap platform that the sentry can tell apart from platform failures. */
import * as os from 'node:os';

/** Start of every native error message about a stub that application code broke. */
const STUB_DESTROYED = 'the sandboxed program destroyed its stub';

/**
 * Raised by a switch when application code broke its own stub process, for example by jumping
 * into the stub's code with its own registers. The program caused it, so a sentry should end the
 * sandboxed thread group as if it had died of `signal` (SIGKILL when the stub lost a thread
 * rather than dying of a signal) instead of reporting an internal error.
 */
export class StubDestroyedError extends Error {
  readonly code = 'ERR_TSVISOR_STUB_DESTROYED';
  /** The host signal number that killed the stub, or 9 (SIGKILL) when it lost a thread. */
  readonly signal: number;

  constructor(message: string) {
    super(message);
    this.name = 'StubDestroyedError';
    const name = /killed by signal (\w+)/.exec(message)?.[1];
    const signals = os.constants.signals as Record<string, number>;
    this.signal = (name !== undefined ? signals[`SIG${name}`] : undefined) ?? signals.SIGKILL;
  }
}

/** Returns a StubDestroyedError for a native error about a broken stub, otherwise `error` itself. */
export function fromNativeError(error: unknown): unknown {
  if (error instanceof Error && error.message.includes(STUB_DESTROYED)) return new StubDestroyedError(error.message);
  return error;
}
