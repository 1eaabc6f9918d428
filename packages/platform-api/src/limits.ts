/**
 * The error a platform raises when a host limit stops it from creating one more context or address
 * space. The sentry turns it into EAGAIN for the clone, fork or vfork that asked, as Linux does when
 * a thread or process limit is reached, instead of ending the sandbox.
 */

/** The `code` of a PlatformLimitError, checked instead of `instanceof` so that copies of this package agree. */
export const PLATFORM_LIMIT = 'ERR_TSVISOR_PLATFORM_LIMIT';

/**
 * Raised by `Platform.newContext` or `Platform.newAddressSpace` when the platform has reached a
 * limit of its own or of the host. Nothing was created, and the platform stays usable: the call
 * may succeed once other contexts or address spaces were released.
 */
export class PlatformLimitError extends Error {
  readonly code = PLATFORM_LIMIT;

  constructor(message: string) {
    super(message);
    this.name = 'PlatformLimitError';
  }
}

/** Reports whether `error` is a PlatformLimitError from any copy of this package. */
export function isPlatformLimitError(error: unknown): error is PlatformLimitError {
  return error instanceof Error && (error as { code?: unknown }).code === PLATFORM_LIMIT;
}
