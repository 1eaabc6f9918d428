/**
 * Placement of the main stack and the mmap area, which execve decides from RLIMIT_STACK as Linux
 * does on x86-64 (arch/x86/mm/mmap.c, mmap_base, Linux 6.x) without address space randomization:
 *
 *   top of user memory   = the stack's top
 *   top - gap            = the mmap base: mmap without a hint allocates downwards from here
 *
 * where gap is RLIMIT_STACK plus the stack guard gap, kept between 128 MiB and 5/6 of the address
 * space. So a stack limit of up to 127 MiB gives the usual 128 MiB hole, a larger one moves the
 * mmap area down, and an unlimited stack puts the mmap base at 1/6 of the address space. x86-64
 * keeps this top-down layout for an unlimited stack too. The generic mm/util.c switches to the
 * legacy bottom-up layout there, but x86's own mmap_is_legacy() ignores the stack limit, as a
 * native `ulimit -s unlimited` run on Linux 6.18 shows.
 */
import { PAGE_SIZE } from '../memory/memory-file.js';

/** RLIMIT_STACK's default soft limit, which the layout uses until execve reads the real one. */
export const DEFAULT_STACK_LIMIT = 8 * 1024 * 1024;

/** Free space Linux keeps between a growing stack and the mapping below it (stack_guard_gap). */
export const STACK_GUARD_GAP = 256 * PAGE_SIZE;

/** The smallest hole Linux leaves between the stack's top and the mmap base. */
const MIN_MMAP_GAP = 128 * 1024 * 1024;

export interface MemoryLayout {
  /** Lowest mappable address. */
  readonly minAddress: number;
  /** First address above user memory. */
  readonly maxAddress: number;
  /** First address above the main stack. */
  readonly stackTop: number;
  /**
   * The main stack's size limit in bytes: RLIMIT_STACK when execve ran, or Infinity for
   * RLIM_INFINITY. The stack also stops STACK_GUARD_GAP above the mapping below it.
   */
  readonly maxStackSize: number;
  /** mmap without a hint allocates downwards from here. */
  readonly mmapTop: number;
}

/**
 * Returns the layout of a new program image in [minAddress, maxAddress) for a stack limit of
 * `stackLimit` bytes (RLIMIT_STACK's soft limit; RLIM_INFINITY or anything beyond 2^53 is
 * unlimited). The top of the platform's range stands in for Linux's TASK_SIZE.
 */
export function computeLayout(minAddress: number, maxAddress: number, stackLimit: bigint): MemoryLayout {
  const maxStackSize = stackLimit > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(stackLimit);

  // An unlimited stack makes the gap overflow in Linux, which then clamps it to the maximum.
  const maxGap = Math.floor(maxAddress / 6) * 5;
  const gap = Math.min(Math.max(maxStackSize + STACK_GUARD_GAP, MIN_MMAP_GAP), maxGap);
  const mmapTop = Math.ceil((maxAddress - gap) / PAGE_SIZE) * PAGE_SIZE;

  return { minAddress, maxAddress, stackTop: maxAddress, maxStackSize, mmapTop };
}
