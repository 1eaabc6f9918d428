/** Liveness checks on host processes, read from /proc. */
import * as fs from 'node:fs';

const POLL_INTERVAL_MS = 20;

/** Returns whether a process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Polls until process `pid` is gone or a zombie, for at most `timeoutMs` milliseconds. Returns
 * whether it is gone, so a test can assert on the result.
 */
export async function waitUntilGone(pid: number, timeoutMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  return !isAlive(pid);
}
