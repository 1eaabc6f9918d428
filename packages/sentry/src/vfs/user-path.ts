/** Reading path names from application memory as latin1 strings, one character per byte. */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { PATH_MAX } from './flags.js';

const PAGE_SIZE = 4096;

/**
 * Returns the NUL-terminated path at `addr`. Reads page by page so that a path ending just before
 * an unmapped page is not an EFAULT. Throws ENAMETOOLONG when no NUL is found within PATH_MAX
 * bytes, EFAULT when the memory is not readable.
 */
export function readPath(task: Task, addr: number): string {
  let path = '';
  let cursor = addr;
  while (path.length < PATH_MAX) {
    const length = Math.min(PAGE_SIZE - (cursor % PAGE_SIZE), PATH_MAX - path.length);
    const chunk = task.mm.copyIn(cursor, length);
    const nul = chunk.indexOf(0);
    if (nul >= 0) return path + chunk.toString('latin1', 0, nul);
    path += chunk.toString('latin1');
    cursor += length;
  }
  return fail(Errno.ENAMETOOLONG);
}

/** Encodes a latin1 path string back into its bytes. */
export function pathBytes(path: string): Buffer {
  return Buffer.from(path, 'latin1');
}
