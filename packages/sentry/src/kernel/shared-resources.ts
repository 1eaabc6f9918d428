/**
 * Reference counts of the state that clone lets tasks share: a memory manager (CLONE_VM, vfork)
 * and a descriptor table (CLONE_FILES). The last task to drop a memory manager releases it and
 * its platform address space; the last to drop a descriptor table closes its descriptors.
 */
import type { MemoryManager } from '../mm/memory-manager.js';
import type { FdTable } from '../vfs/fd-table.js';

const users = new WeakMap<object, number>();

function hold(resource: object): void {
  users.set(resource, (users.get(resource) ?? 0) + 1);
}

/** Drops one user; returns true when it was the last. */
function drop(resource: object): boolean {
  const count = (users.get(resource) ?? 1) - 1;
  if (count > 0) {
    users.set(resource, count);
    return false;
  }
  users.delete(resource);
  return true;
}

/** Returns how many tasks use `resource`. */
export function userCount(resource: object): number {
  return users.get(resource) ?? 0;
}

export function holdMemory(mm: MemoryManager): void {
  hold(mm);
}

/** Drops a task's use of `mm`; the last user frees its pages and its address space. */
export function dropMemory(mm: MemoryManager): void {
  if (!drop(mm)) return;
  try {
    mm.release();
  } finally {
    mm.addressSpace.release();
  }
}

export function holdFdTable(table: FdTable): void {
  hold(table);
}

/** Drops a task's use of `table`; the last user closes every descriptor in it. */
export function dropFdTable(table: FdTable): void {
  if (drop(table)) table.closeAll();
}
