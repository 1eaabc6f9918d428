/**
 * Advisory file locks, kept by the sentry per sandbox and never taken on the host: flock(2) locks
 * and fcntl(2) byte-range record locks, both POSIX (F_SETLK) and open file description (F_OFD_SETLK).
 *
 * Locks are kept per file, keyed the way the sentry identifies files: a tmpfs file by its inode
 * object, any other file by the device and inode numbers its stat() reports. Each lock has an
 * owner, as on Linux:
 * - a flock lock and an OFD record lock belong to the file description, so descriptors made by
 *   dup and fork share them, and they go when the last descriptor of the description is closed;
 * - a POSIX record lock belongs to the descriptor table, which is what Linux uses as the owner of
 *   a process's locks. So a child made by fork holds none of its parent's locks, and closing any
 *   descriptor of the file releases all of them, even one from a different open(2).
 * flock locks and record locks do not conflict with each other, again as on Linux.
 *
 * Waiting is left to the caller: it queues a wake-up with watch() and tries again when the locks
 * of the file change, so a blocked lock request never blocks the sentry.
 */
import type { FileDescription } from './file.js';
import { O_PATH } from './flags.js';

export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;

/** The largest file offset (OFFSET_MAX). A record lock that ends here extends to the end of the file, however it grows. */
export const OFFSET_MAX = 2n ** 63n - 1n;

/** One byte-range lock: bytes start..end, both inclusive. */
export interface RecordLock {
  /** The descriptor table for a POSIX lock, the file description for an OFD lock. */
  readonly owner: object;
  readonly ofd: boolean;
  /** The thread group id of the process that set it, which F_GETLK reports. */
  readonly pid: number;
  readonly type: typeof F_RDLCK | typeof F_WRLCK;
  readonly start: bigint;
  readonly end: bigint;
}

type LockKey = object | string;

/** The locks of one file. */
export class FileLocks {
  /** flock locks by owning description: true for LOCK_EX, false for LOCK_SH. */
  readonly flocks = new Map<FileDescription, boolean>();
  /** Record locks in the order they were set. The ranges of one owner never overlap. */
  records: RecordLock[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly table: Map<LockKey, FileLocks>,
    readonly key: LockKey,
  ) {}

  /**
   * Applies flock(2) operation `type` for `file` and returns true, or returns false when another
   * description's lock conflicts. Like Linux, a conversion first drops the lock `file` holds, so
   * a conversion that has to wait leaves `file` with no lock meanwhile.
   */
  flock(file: FileDescription, type: number): boolean {
    const exclusive = type === F_WRLCK;
    const held = this.flocks.get(file);
    if (held !== undefined) {
      if (type !== F_UNLCK && held === exclusive) return true;
      this.flocks.delete(file);
      this.forget(file);
      this.changed();
    }
    if (type === F_UNLCK) {
      this.prune();
      return true;
    }

    for (const [owner, ownerExclusive] of this.flocks) {
      if (owner !== file && (exclusive || ownerExclusive)) return false;
    }
    this.flocks.set(file, exclusive);
    noteHolder(file, this);
    return true;
  }

  /** Returns the first record lock of another owner that conflicts with `type` on start..end. */
  findConflict(owner: object, type: number, start: bigint, end: bigint): RecordLock | undefined {
    return this.records.find(
      (lock) => lock.owner !== owner && lock.start <= end && lock.end >= start && (lock.type === F_WRLCK || type === F_WRLCK),
    );
  }

  /**
   * Gives `owner` a lock of `type` on start..end, described by `lock`, or with F_UNLCK removes its
   * locks there. The owner's other locks that overlap are cut back or split around the range, and
   * those of the same type that overlap or touch it merge with it, as Linux does. The caller has
   * checked for conflicts.
   */
  setRecord(owner: object, type: number, start: bigint, end: bigint, lock?: Omit<RecordLock, 'start' | 'end'>): void {
    let first = start;
    let last = end;
    const kept: RecordLock[] = [];
    for (const other of this.records) {
      if (other.owner !== owner || other.end + 1n < first || other.start > last + 1n) {
        kept.push(other);
        continue;
      }
      if (other.type === type) {
        first = other.start < first ? other.start : first;
        last = other.end > last ? other.end : last;
        continue;
      }
      if (other.end < first || other.start > last) {
        kept.push(other);
        continue;
      }
      if (other.start < first) kept.push({ ...other, end: first - 1n });
      if (other.end > last) kept.push({ ...other, start: last + 1n });
    }

    if (type !== F_UNLCK && lock !== undefined) kept.push({ ...lock, start: first, end: last });
    this.records = kept;
    if (type === F_UNLCK) this.forget(owner);
    else noteHolder(owner, this);
    this.changed();
    this.prune();
  }

  /** Removes every record lock of `owner`, as closing a descriptor or the last reference does. */
  removeRecords(owner: object): void {
    const kept = this.records.filter((lock) => lock.owner !== owner);
    if (kept.length === this.records.length) return;
    this.records = kept;
    this.forget(owner);
    this.changed();
    this.prune();
  }

  /** Removes the flock lock and the OFD record locks of a description whose last reference went. */
  releaseDescription(file: FileDescription): void {
    const hadFlock = this.flocks.delete(file);
    const kept = this.records.filter((lock) => lock.owner !== file);
    if (!hadFlock && kept.length === this.records.length) return;
    this.records = kept;
    this.forget(file);
    this.changed();
    this.prune();
  }

  /**
   * Calls `wake` once, at the next change of this file's locks; returns the cancellation. Once
   * woken, the waiter no longer keeps this object in the sandbox's table, so it must look the
   * file's locks up again with fileLocks() before it tries again.
   */
  watch(wake: () => void): () => void {
    const waiter = (): void => wake();
    this.waiters.add(waiter);
    return () => {
      this.waiters.delete(waiter);
      this.prune();
    };
  }

  private changed(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }

  /** Drops this file from the sandbox's table once nothing is locked or waited for. */
  private prune(): void {
    if (this.flocks.size === 0 && this.records.length === 0 && this.waiters.size === 0) this.table.delete(this.key);
  }

  /** Stops listing this file among `owner`'s once `owner` holds no lock on it. */
  private forget(owner: object): void {
    if (this.flocks.has(owner as FileDescription)) return;
    if (this.records.some((lock) => lock.owner === owner)) return;
    held.get(owner)?.delete(this);
  }
}

/** The lock tables of each sandbox, by its kernel. */
const tables = new WeakMap<object, Map<LockKey, FileLocks>>();

/** The files on which each owner (descriptor table or description) holds a lock, for releasing them. */
const held = new WeakMap<object, Set<FileLocks>>();

function noteHolder(owner: object, locks: FileLocks): void {
  let files = held.get(owner);
  if (files === undefined) {
    files = new Set();
    held.set(owner, files);
  }
  files.add(locks);
}

/** Returns the identity of the file `file` is a description of. */
function lockKey(file: FileDescription): LockKey {
  const inode = (file as { inode?: unknown }).inode;
  if (typeof inode === 'object' && inode !== null) return inode;
  const stat = file.stat();
  return `${stat.dev}:${stat.ino}`;
}

/**
 * Returns the locks of `file`'s file in the sandbox of `kernel`. With `create` false it returns
 * undefined when nothing is locked there, so that an unlock makes no entry.
 */
export function fileLocks(kernel: object, file: FileDescription, create: boolean): FileLocks | undefined {
  let table = tables.get(kernel);
  if (table === undefined) {
    if (!create) return undefined;
    table = new Map();
    tables.set(kernel, table);
  }
  const key = lockKey(file);
  let locks = table.get(key);
  if (locks === undefined && create) {
    locks = new FileLocks(table, key);
    table.set(key, locks);
  }
  return locks;
}

/**
 * Releases the POSIX record locks that `fdTable` holds on `file`'s file: Linux does this whenever
 * a process closes any descriptor of a file. Called by the descriptor table for every descriptor
 * it closes or replaces; it costs nothing while the table holds no lock.
 */
export function releasePosixLocks(fdTable: object, file: FileDescription): void {
  const files = held.get(fdTable);
  if (files === undefined || files.size === 0 || (file.flags & O_PATH) !== 0) return;
  const key = lockKey(file);
  for (const locks of [...files]) {
    if (locks.key === key) locks.removeRecords(fdTable);
  }
}

/** Releases the flock and OFD locks of a description whose last reference is gone. */
export function releaseDescriptionLocks(file: FileDescription): void {
  const files = held.get(file);
  if (files === undefined) return;
  held.delete(file);
  for (const locks of [...files]) locks.releaseDescription(file);
}

/**
 * The owner each blocked F_SETLKW waits for, by the waiter's owner, for deadlock detection.
 * NOTE: one entry per owner, so when two threads of one process wait at once only the later
 * wait is followed.
 */
const waitsFor = new WeakMap<object, object>();

/** Linux follows at most this many waits-for links (MAX_DEADLK_ITERATIONS in fs/locks.c, 10 in 6.x). */
const MAX_DEADLOCK_STEPS = 10;

/** Tests whether `owner` waiting for `blocker` would close a cycle of POSIX lock waits. */
export function wouldDeadlock(owner: object, blocker: object): boolean {
  let current: object | undefined = blocker;
  for (let step = 0; current !== undefined && step < MAX_DEADLOCK_STEPS; step++) {
    if (current === owner) return true;
    current = waitsFor.get(current);
  }
  return false;
}

/** Records that `owner` waits for `blocker`, or with undefined that it no longer waits. */
export function setWaitsFor(owner: object, blocker: object | undefined): void {
  if (blocker === undefined) waitsFor.delete(owner);
  else waitsFor.set(owner, blocker);
}
