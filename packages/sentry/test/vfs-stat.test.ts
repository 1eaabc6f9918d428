import { lstatSync, mkdtempSync, rmSync, statfsSync, statSync, symlinkSync, writeFileSync, type BigIntStats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

import { Errno } from '../src/errno.js';
import { AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, O_RDONLY } from '../src/vfs/flags.js';
import { STAT_SIZE } from '../src/vfs/stat.js';
import { fakeTask, type FakeTask } from './vfs-fake-task.js';

const test = suite('vfs stat');

let root: string;
let sandbox: FakeTask;
let hostRootSandbox: FakeTask;

test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'tsvisor-stat-'));
  writeFileSync(join(root, 'file'), 'x'.repeat(10000), { mode: 0o640 });
  symlinkSync('file', join(root, 'link'));
  sandbox = fakeTask(root);
  hostRootSandbox = fakeTask('/');
});

test.after(() => {
  sandbox.close();
  hostRootSandbox.close();
  rmSync(root, { recursive: true, force: true });
});

interface Decoded {
  dev: bigint;
  ino: bigint;
  nlink: bigint;
  mode: number;
  uid: number;
  gid: number;
  rdev: bigint;
  size: bigint;
  blksize: bigint;
  blocks: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

function decode(bytes: Buffer): Decoded {
  const time = (offset: number) => bytes.readBigInt64LE(offset) * 1_000_000_000n + bytes.readBigInt64LE(offset + 8);
  return {
    dev: bytes.readBigUInt64LE(0),
    ino: bytes.readBigUInt64LE(8),
    nlink: bytes.readBigUInt64LE(16),
    mode: bytes.readUInt32LE(24),
    uid: bytes.readUInt32LE(28),
    gid: bytes.readUInt32LE(32),
    rdev: bytes.readBigUInt64LE(40),
    size: bytes.readBigInt64LE(48),
    blksize: bytes.readBigInt64LE(56),
    blocks: bytes.readBigInt64LE(64),
    atimeNs: time(72),
    mtimeNs: time(88),
    ctimeNs: time(104),
  };
}

function assertSameAs(decoded: Decoded, host: BigIntStats, what: string): void {
  assert.is(decoded.dev, host.dev, `${what} st_dev`);
  assert.is(decoded.ino, host.ino, `${what} st_ino`);
  assert.is(decoded.nlink, host.nlink, `${what} st_nlink`);
  assert.is(decoded.mode, Number(host.mode), `${what} st_mode`);
  assert.is(decoded.uid, Number(host.uid), `${what} st_uid`);
  assert.is(decoded.gid, Number(host.gid), `${what} st_gid`);
  assert.is(decoded.rdev, host.rdev, `${what} st_rdev`);
  assert.is(decoded.size, host.size, `${what} st_size`);
  assert.is(decoded.blksize, host.blksize, `${what} st_blksize`);
  assert.is(decoded.blocks, host.blocks, `${what} st_blocks`);
  assert.is(decoded.atimeNs, host.atimeNs, `${what} st_atime`);
  assert.is(decoded.mtimeNs, host.mtimeNs, `${what} st_mtime`);
  assert.is(decoded.ctimeNs, host.ctimeNs, `${what} st_ctime`);
}

async function statCall(target: FakeTask, name: 'stat' | 'lstat', path: string): Promise<Decoded> {
  const out = target.memory.alloc(STAT_SIZE);
  assert.is(await target.call(name, target.memory.string(path), out), 0);
  return decode(target.memory.copyIn(out, STAT_SIZE));
}

test('stat matches the host fields', async () => {
  assertSameAs(await statCall(sandbox, 'stat', '/file'), statSync(join(root, 'file'), { bigint: true }), 'file');
  assertSameAs(await statCall(sandbox, 'stat', '/link'), statSync(join(root, 'file'), { bigint: true }), 'followed link');
  assertSameAs(await statCall(sandbox, 'lstat', '/link'), lstatSync(join(root, 'link'), { bigint: true }), 'link');
  assertSameAs(await statCall(sandbox, 'stat', '/'), statSync(root, { bigint: true }), 'root');
});

test('device nodes report their rdev', async () => {
  const decoded = await statCall(hostRootSandbox, 'stat', '/dev/null');
  const host = statSync('/dev/null', { bigint: true });
  assertSameAs(decoded, host, '/dev/null');
  assert.is(decoded.rdev, (1n << 8n) | 3n);
});

test('fstat and newfstatat flags', async () => {
  const memory = sandbox.memory;
  const fd = await sandbox.call('open', memory.string('/file'), O_RDONLY);
  const out = memory.alloc(STAT_SIZE);
  const host = statSync(join(root, 'file'), { bigint: true });

  assert.is(await sandbox.call('fstat', fd, out), 0);
  assertSameAs(decode(memory.copyIn(out, STAT_SIZE)), host, 'fstat');
  assert.is(await sandbox.call('newfstatat', fd, memory.string(''), out, AT_EMPTY_PATH), 0);
  assertSameAs(decode(memory.copyIn(out, STAT_SIZE)), host, 'AT_EMPTY_PATH');
  assert.is(await sandbox.call('newfstatat', fd, memory.string(''), out, 0), -Errno.ENOENT);
  assert.is(await sandbox.call('newfstatat', AT_FDCWD, memory.string('link'), out, AT_SYMLINK_NOFOLLOW), 0);
  assertSameAs(decode(memory.copyIn(out, STAT_SIZE)), lstatSync(join(root, 'link'), { bigint: true }), 'nofollow');
  assert.is(await sandbox.call('newfstatat', AT_FDCWD, memory.string('file'), out, 0x8000), -Errno.EINVAL);
  await sandbox.call('close', fd);
});

test('stat errors', async () => {
  const memory = sandbox.memory;
  const out = memory.alloc(STAT_SIZE);
  assert.is(await sandbox.call('stat', memory.string('/missing'), out), -Errno.ENOENT);
  assert.is(await sandbox.call('stat', memory.string('/file/x'), out), -Errno.ENOTDIR);
  assert.is(await sandbox.call('stat', memory.string('/file'), 0x10), -Errno.EFAULT);
  assert.is(await sandbox.call('fstat', 55, out), -Errno.EBADF);
});

test('statx basic fields', async () => {
  const memory = sandbox.memory;
  const out = memory.alloc(256);
  assert.is(await sandbox.call('statx', AT_FDCWD, memory.string('/file'), 0, 0x7ff, out), 0);
  const bytes = memory.copyIn(out, 256);
  const host = statSync(join(root, 'file'), { bigint: true });
  assert.is(bytes.readUInt32LE(0) & 0x7ff, 0x7ff);
  assert.is(BigInt(bytes.readUInt16LE(28)), host.mode);
  assert.is(bytes.readBigUInt64LE(32), host.ino);
  assert.is(bytes.readBigUInt64LE(40), host.size);
  assert.is(bytes.readBigInt64LE(112) * 1_000_000_000n + BigInt(bytes.readUInt32LE(120)), host.mtimeNs);
});

test('statfs reports the host file system, read-only', async () => {
  const memory = sandbox.memory;
  const out = memory.alloc(120);
  assert.is(await sandbox.call('statfs', memory.string('/file'), out), 0);
  const bytes = memory.copyIn(out, 120);
  const host = statfsSync(join(root, 'file'), { bigint: true });
  assert.is(bytes.readBigInt64LE(0), host.type);
  assert.is(bytes.readBigInt64LE(8), host.bsize);
  assert.is(bytes.readBigUInt64LE(16), host.blocks);
  assert.is(bytes.readBigUInt64LE(40), host.files);
  const ST_RDONLY = 1n;
  assert.is(bytes.readBigInt64LE(80) & ST_RDONLY, ST_RDONLY);

  const fd = await sandbox.call('open', memory.string('/file'), O_RDONLY);
  assert.is(await sandbox.call('fstatfs', fd, out), 0);
  assert.is(memory.copyIn(out, 8).readBigInt64LE(0), host.type);
  await sandbox.call('close', fd);

  const PROC_SUPER_MAGIC = 0x9fa0n;
  assert.is(await sandbox.call('statfs', memory.string('/proc/self'), out), 0);
  assert.is(memory.copyIn(out, 8).readBigInt64LE(0), PROC_SUPER_MAGIC);
  assert.is(await sandbox.call('statfs', memory.string('/missing'), out), -Errno.ENOENT);
});

test('access on the read-only view', async () => {
  const memory = sandbox.memory;
  const R_OK = 4;
  const W_OK = 2;
  const X_OK = 1;
  assert.is(await sandbox.call('access', memory.string('/file'), R_OK), 0);
  assert.is(await sandbox.call('access', memory.string('/file'), W_OK), -Errno.EROFS);
  assert.is(await sandbox.call('access', memory.string('/file'), X_OK), -Errno.EACCES);
  assert.is(await sandbox.call('access', memory.string('/missing'), 0), -Errno.ENOENT);
  assert.is(await sandbox.call('access', memory.string('/file'), 8), -Errno.EINVAL);
});

test.run();
