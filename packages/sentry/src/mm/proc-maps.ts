/**
 * The text of /proc/PID/maps: one line per VMA, in the format of Linux's fs/proc/task_mmu.c,
 *
 *   start-end perms offset major:minor inode name
 *
 * with addresses in lower-case hexadecimal, perms as rwx plus p (private) or s (shared), the
 * file offset as 8 hex digits, and the name, when there is one, starting at column 73.
 */
import type { MemoryManager, Vma } from './memory-manager.js';
import { Prot } from './flags.js';

/** Column at which Linux starts the name, on 64-bit. */
const NAME_COLUMN = 73;

/** Splits a Linux dev_t (new_encode_dev format) into major and minor numbers. */
function deviceNumbers(dev: bigint): [number, number] {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return [major, minor];
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

function formatVma(vma: Vma, stackTop: number): string {
  const perms =
    ((vma.prot & Prot.READ) !== 0 ? 'r' : '-') +
    ((vma.prot & Prot.WRITE) !== 0 ? 'w' : '-') +
    ((vma.prot & Prot.EXEC) !== 0 ? 'x' : '-') +
    (vma.shared ? 's' : 'p');
  const [major, minor] = deviceNumbers(vma.dev);
  // Linux ends the fields with a space even when no name follows.
  let line = `${hex(vma.start, 8)}-${hex(vma.end, 8)} ${perms} ${hex(vma.offset, 8)} ${hex(major, 2)}:${hex(minor, 2)} ${vma.ino} `;

  // Only the VMA that reaches the top of the stack is "[stack]". Pages the stack grew into merge
  // with it, so they are part of that VMA.
  let name = vma.name;
  if (name === '[stack]' && vma.end !== stackTop) name = '';
  if (name !== '') line = line.padEnd(NAME_COLUMN, ' ') + name;
  return line;
}

/** Returns /proc/PID/maps for `mm`. Names are latin1 VFS paths, so the result is latin1 too. */
export function formatMaps(mm: MemoryManager, stackTop: number): string {
  let text = '';
  for (const vma of mm.vmas.items) text += `${formatVma(vma, stackTop)}\n`;
  return text;
}
