/** Memory protection and mapping flags, from <asm-generic/mman-common.h> and <linux/mman.h>. */

export const Prot = {
  NONE: 0,
  READ: 1,
  WRITE: 2,
  EXEC: 4,
  GROWSDOWN: 0x01000000,
  GROWSUP: 0x02000000,
} as const;

export const PROT_ACCESS_MASK = Prot.READ | Prot.WRITE | Prot.EXEC;

export const MapFlag = {
  SHARED: 0x01,
  PRIVATE: 0x02,
  SHARED_VALIDATE: 0x03,
  TYPE: 0x0f,
  FIXED: 0x10,
  ANONYMOUS: 0x20,
  GROWSDOWN: 0x0100,
  DENYWRITE: 0x0800,
  EXECUTABLE: 0x1000,
  LOCKED: 0x2000,
  NORESERVE: 0x4000,
  POPULATE: 0x8000,
  NONBLOCK: 0x10000,
  STACK: 0x20000,
  HUGETLB: 0x40000,
  SYNC: 0x80000,
  FIXED_NOREPLACE: 0x100000,
} as const;

export const MremapFlag = {
  MAYMOVE: 1,
  FIXED: 2,
  DONTUNMAP: 4,
} as const;
