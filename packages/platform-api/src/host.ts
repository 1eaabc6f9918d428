/** Facts about the host that every platform needs the same way. */
import * as fs from 'node:fs';

const PAGE_SIZE = 4096;

/**
 * Returns the lowest address a platform may map on this host: `floor`, raised to the host's
 * vm.mmap_min_addr (rounded up to a page) when that is higher, since the host kernel rejects
 * mappings below it.
 */
export function hostMinUserAddress(floor = 0x10000): number {
  let mmapMinAddr = 0;
  try {
    mmapMinAddr = Number(fs.readFileSync('/proc/sys/vm/mmap_min_addr', 'utf8').trim()) || 0;
  } catch {
    // Without /proc/sys the floor applies.
  }
  const rounded = Math.ceil(mmapMinAddr / PAGE_SIZE) * PAGE_SIZE;
  return Math.max(floor, rounded);
}
