/**
 * runsc's own exit statuses, for failures before the program runs. Once it runs, runsc exits with
 * the program's status instead, or 128 + N when signal N killed it.
 */
import * as os from 'node:os';
import { PlatformUnavailableError } from '@tsvisor/platform-api';
import { UsageError } from './flags.js';

/** A failure named in the output, such as an unknown platform or a missing working directory. */
export const EXIT_FAILURE = 1;
/** Invalid command line: an unknown command or flag, or a missing or invalid flag value. */
export const EXIT_USAGE = 2;
/** An internal error of runsc, reported with a hint to run again with --debug. */
export const EXIT_INTERNAL = 70;
/** The program was found but cannot be executed, as shells, env and timeout report it. */
export const EXIT_CANNOT_EXECUTE = 126;
/** The program was not found, as shells, env and timeout report it. */
export const EXIT_NOT_FOUND = 127;

/** Tells whether `error` is one that runsc reports in one line without "internal error". */
export function isUserError(error: unknown): boolean {
  return error instanceof UsageError
    || error instanceof PlatformUnavailableError
    || (error instanceof Error && error.name === 'SandboxError');
}

/**
 * Returns the exit status for an error thrown before the program ran. When execve of the program
 * failed, the SandboxError carries its errno. As for coreutils env, ENOENT means "not found" (127)
 * and any other errno means "cannot execute" (126).
 */
export function exitStatusFor(error: unknown): number {
  if (error instanceof UsageError) return EXIT_USAGE;
  if (!isUserError(error)) return EXIT_INTERNAL;

  const errno = (error as { errno?: unknown }).errno;
  if (typeof errno !== 'number') return EXIT_FAILURE;
  return errno === os.constants.errno.ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE;
}
