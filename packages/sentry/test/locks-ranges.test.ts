/**
 * The sentry's lock table without a sandbox: record ranges splitting and merging, conflicts
 * between owners, flock conversion, release by descriptor table and by description, the removal
 * of empty entries, wake-ups and deadlock cycles.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { FileDescription } from '../src/vfs/file.js';
import {
  F_RDLCK,
  F_UNLCK,
  F_WRLCK,
  type FileLocks,
  fileLocks,
  OFFSET_MAX,
  releaseDescriptionLocks,
  releasePosixLocks,
  setWaitsFor,
  wouldDeadlock,
} from '../src/vfs/locks.js';

/** Builds a description of host file `ino` on device 1 with only the fields the lock table reads. */
function description(ino: number): FileDescription {
  return { flags: 0, stat: () => ({ dev: 1n, ino: BigInt(ino) }) } as unknown as FileDescription;
}

function ranges(locks: FileLocks, owner: object): string[] {
  return locks.records
    .filter((lock) => lock.owner === owner)
    .map((lock) => `${lock.type === F_WRLCK ? 'w' : 'r'}${lock.start}-${lock.end === OFFSET_MAX ? 'max' : lock.end}`)
    .sort();
}

function lockRange(locks: FileLocks, owner: object, type: number, start: number, end: bigint | number): void {
  const lock = { owner, ofd: false, pid: 7, type: type as typeof F_RDLCK | typeof F_WRLCK };
  locks.setRecord(owner, type, BigInt(start), BigInt(end), lock);
}

const test = suite('lock table');

test('unlock splits a range', () => {
  const kernel = {};
  const owner = {};
  const locks = fileLocks(kernel, description(1), true) as FileLocks;
  lockRange(locks, owner, F_WRLCK, 0, 99);
  locks.setRecord(owner, F_UNLCK, 10n, 19n);
  assert.equal(ranges(locks, owner), ['w0-9', 'w20-99']);
});

test('same type merges when touching', () => {
  const locks = fileLocks({}, description(1), true) as FileLocks;
  const owner = {};
  lockRange(locks, owner, F_RDLCK, 0, 9);
  lockRange(locks, owner, F_RDLCK, 10, 19);
  lockRange(locks, owner, F_RDLCK, 30, OFFSET_MAX);
  assert.equal(ranges(locks, owner), ['r0-19', 'r30-max']);
});

test('other type replaces the overlap', () => {
  const locks = fileLocks({}, description(1), true) as FileLocks;
  const owner = {};
  lockRange(locks, owner, F_RDLCK, 0, 9);
  lockRange(locks, owner, F_WRLCK, 10, 19);
  assert.equal(ranges(locks, owner), ['r0-9', 'w10-19']);
  lockRange(locks, owner, F_WRLCK, 5, 14);
  assert.equal(ranges(locks, owner), ['r0-4', 'w5-19']);
  lockRange(locks, owner, F_RDLCK, 8, 8);
  assert.equal(ranges(locks, owner), ['r0-4', 'r8-8', 'w5-7', 'w9-19']);
});

test('conflicts only between owners', () => {
  const locks = fileLocks({}, description(1), true) as FileLocks;
  const first = {};
  const second = {};
  lockRange(locks, first, F_RDLCK, 0, 9);
  lockRange(locks, first, F_WRLCK, 20, 29);
  assert.is(locks.findConflict(first, F_WRLCK, 0n, 100n), undefined, 'own locks');
  assert.is(locks.findConflict(second, F_RDLCK, 0n, 19n), undefined, 'read against read');
  assert.is(locks.findConflict(second, F_WRLCK, 9n, 9n)?.start, 0n, 'write against read');
  assert.is(locks.findConflict(second, F_RDLCK, 29n, 40n)?.start, 20n, 'read against write');
  assert.is(locks.findConflict(second, F_WRLCK, 10n, 19n), undefined, 'the gap');
});

test('flock conversion drops the old lock', () => {
  const locks = fileLocks({}, description(1), true) as FileLocks;
  const first = description(1);
  const second = description(1);
  assert.ok(locks.flock(first, F_RDLCK));
  assert.ok(locks.flock(second, F_RDLCK));
  assert.not.ok(locks.flock(second, F_WRLCK), 'upgrade against a shared lock');
  assert.is(locks.flocks.has(second), false, 'the failed upgrade dropped the shared lock');
  assert.ok(locks.flock(first, F_WRLCK), 'upgrade when alone');
});

test('empty entries are removed', () => {
  const kernel = {};
  const file = description(2);
  const owner = {};
  assert.is(fileLocks(kernel, file, false), undefined);
  const locks = fileLocks(kernel, file, true) as FileLocks;
  lockRange(locks, owner, F_WRLCK, 0, 0);
  assert.ok(locks.flock(file, F_WRLCK));
  locks.setRecord(owner, F_UNLCK, 0n, OFFSET_MAX);
  assert.is(fileLocks(kernel, file, false), locks, 'the flock lock remains');
  locks.flock(file, F_UNLCK);
  assert.is(fileLocks(kernel, file, false), undefined);
});

test('closing another description releases POSIX locks', () => {
  const kernel = {};
  const fdTable = {};
  const locks = fileLocks(kernel, description(3), true) as FileLocks;
  lockRange(locks, fdTable, F_WRLCK, 0, 9);
  releasePosixLocks(fdTable, description(4));
  assert.equal(ranges(locks, fdTable), ['w0-9'], 'another file');
  releasePosixLocks({}, description(3));
  assert.equal(ranges(locks, fdTable), ['w0-9'], 'another descriptor table');
  releasePosixLocks(fdTable, description(3));
  assert.equal(ranges(locks, fdTable), []);
  assert.is(fileLocks(kernel, description(3), false), undefined);
});

test('last close releases flock and OFD locks', () => {
  const kernel = {};
  const file = description(5);
  const locks = fileLocks(kernel, file, true) as FileLocks;
  assert.ok(locks.flock(file, F_RDLCK));
  locks.setRecord(file, F_WRLCK, 0n, 0n, { owner: file, ofd: true, pid: 7, type: F_WRLCK });
  releaseDescriptionLocks(file);
  assert.is(locks.flocks.size, 0);
  assert.is(locks.records.length, 0);
  assert.is(fileLocks(kernel, file, false), undefined);
});

test('changes wake waiters once', () => {
  const locks = fileLocks({}, description(6), true) as FileLocks;
  const owner = {};
  lockRange(locks, owner, F_WRLCK, 0, 9);
  let wakes = 0;
  locks.watch(() => wakes++);
  locks.setRecord(owner, F_UNLCK, 0n, 4n);
  locks.setRecord(owner, F_UNLCK, 5n, 9n);
  assert.is(wakes, 1);

  let cancelledWakes = 0;
  const cancel = locks.watch(() => cancelledWakes++);
  cancel();
  lockRange(locks, owner, F_WRLCK, 0, 9);
  assert.is(cancelledWakes, 0);
});

test('deadlock cycle detection', () => {
  const first = {};
  const second = {};
  const third = {};
  assert.not.ok(wouldDeadlock(first, second));
  setWaitsFor(second, third);
  setWaitsFor(third, first);
  assert.ok(wouldDeadlock(first, second), 'first -> second -> third -> first');
  setWaitsFor(third, undefined);
  assert.not.ok(wouldDeadlock(first, second));
  setWaitsFor(second, undefined);
});

test.run();
