import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

import { Errno } from '../src/errno.js';
import { DT_DIR, DT_LNK, DT_REG } from '../src/vfs/dirent.js';
import { O_DIRECTORY, O_RDONLY, SEEK_SET } from '../src/vfs/flags.js';
import { fakeTask, type FakeTask } from './vfs-fake-task.js';

const test = suite('vfs getdents64');

interface Entry {
  ino: bigint;
  offset: bigint;
  type: number;
  name: string;
}

let root: string;
let sandbox: FakeTask;

test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'tsvisor-getdents-'));
  mkdirSync(join(root, 'dir'));
  mkdirSync(join(root, 'dir', 'sub'));
  symlinkSync('sub', join(root, 'dir', 'link'));
  for (let i = 0; i < 40; i++) writeFileSync(join(root, 'dir', `file-${i}-${'n'.repeat(i)}`), String(i));
  sandbox = fakeTask(root);
});

test.after(() => {
  sandbox.close();
  rmSync(root, { recursive: true, force: true });
});

function parse(bytes: Buffer): Entry[] {
  const entries: Entry[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const length = bytes.readUInt16LE(offset + 16);
    const nameEnd = bytes.indexOf(0, offset + 19);
    entries.push({
      ino: bytes.readBigUInt64LE(offset),
      offset: bytes.readBigInt64LE(offset + 8),
      type: bytes[offset + 18],
      name: bytes.toString('latin1', offset + 19, nameEnd),
    });
    offset += length;
  }
  return entries;
}

async function openDir(path: string): Promise<number> {
  const fd = await sandbox.call('open', sandbox.memory.string(path), O_RDONLY | O_DIRECTORY);
  assert.ok(fd >= 0, `open ${path} failed with ${fd}`);
  return fd;
}

/** Reads the whole directory with getdents64 calls of `size` bytes. */
async function readAll(fd: number, size: number): Promise<Entry[]> {
  const buffer = sandbox.memory.alloc(size);
  const entries: Entry[] = [];
  for (;;) {
    const n = await sandbox.call('getdents64', fd, buffer, size);
    assert.ok(n >= 0, `getdents64 failed with ${n}`);
    if (n === 0) return entries;
    entries.push(...parse(sandbox.memory.copyIn(buffer, n)));
  }
}

test('entries carry the real inode and type', async () => {
  const fd = await openDir('/dir');
  const entries = await readAll(fd, 32768);
  await sandbox.call('close', fd);

  const names = entries.map((entry) => entry.name).sort();
  assert.equal(names, ['.', '..', ...readdirSync(join(root, 'dir'))].sort());
  for (const entry of entries) {
    if (entry.name === '..') continue;
    const host = lstatSync(join(root, 'dir', entry.name), { bigint: true });
    assert.is(entry.ino, host.ino, `d_ino of ${entry.name}`);
  }
  const typeOf = (name: string) => entries.find((entry) => entry.name === name)?.type;
  assert.is(typeOf('sub'), DT_DIR);
  assert.is(typeOf('link'), DT_LNK);
  assert.is(typeOf('file-0-'), DT_REG);
});

test('small buffers resume without loss', async () => {
  const fd = await openDir('/dir');
  const whole = await readAll(fd, 32768);
  await sandbox.call('lseek', fd, 0, SEEK_SET);
  // 88 bytes hold one or two entries of these names, so every call returns a few and resumes.
  const piecewise = await readAll(fd, 88);
  await sandbox.call('close', fd);
  assert.equal(piecewise.map((entry) => entry.name), whole.map((entry) => entry.name));
});

test('buffer too small for one entry is EINVAL', async () => {
  const fd = await openDir('/dir');
  const buffer = sandbox.memory.alloc(4096);
  const n = await sandbox.call('getdents64', fd, buffer, 4096);
  assert.ok(n > 0);
  const firstLength = sandbox.memory.copyIn(buffer, 24).readUInt16LE(16);
  await sandbox.call('lseek', fd, 0, SEEK_SET);

  assert.is(await sandbox.call('getdents64', fd, buffer, firstLength - 1), -Errno.EINVAL);
  assert.is(await sandbox.call('getdents64', fd, buffer, firstLength), firstLength);
  await sandbox.call('close', fd);
});

test('seeking to d_off resumes after that entry', async () => {
  const fd = await openDir('/dir');
  const whole = await readAll(fd, 32768);
  const middle = whole[10];
  await sandbox.call('lseek', fd, Number(middle.offset), SEEK_SET);
  const rest = await readAll(fd, 32768);
  await sandbox.call('close', fd);
  assert.equal(rest.map((entry) => entry.name), whole.slice(11).map((entry) => entry.name));
});

test('getdents64 on a file is ENOTDIR and on a bad fd EBADF', async () => {
  const fd = await sandbox.call('open', sandbox.memory.string('/dir/file-1-n'), O_RDONLY);
  const buffer = sandbox.memory.alloc(1024);
  assert.is(await sandbox.call('getdents64', fd, buffer, 1024), -Errno.ENOTDIR);
  await sandbox.call('close', fd);
  assert.is(await sandbox.call('getdents64', 77, buffer, 1024), -Errno.EBADF);
  const dirFd = await openDir('/dir');
  assert.is(await sandbox.call('getdents64', dirFd, 0x10, 1024), -Errno.EFAULT);
  await sandbox.call('close', dirFd);
});

test('proc lists self, the system files and the process', async () => {
  const fd = await openDir('/proc');
  const entries = await readAll(fd, 64);
  await sandbox.call('close', fd);
  assert.equal(entries.map((entry) => entry.name), [
    '.',
    '..',
    'self',
    'cpuinfo',
    'meminfo',
    'uptime',
    'loadavg',
    'mounts',
    'stat',
    'version',
    'filesystems',
    '1',
  ]);
  assert.is(entries[2].type, DT_LNK);

  const processFd = await openDir('/proc/self');
  const files = await readAll(processFd, 4096);
  await sandbox.call('close', processFd);
  assert.equal(files.map((entry) => entry.name), [
    '.',
    '..',
    'exe',
    'cwd',
    'root',
    'fd',
    'task',
    'maps',
    'stat',
    'status',
    'cmdline',
    'comm',
    'environ',
    'limits',
    'mounts',
    'statm',
  ]);

  const fdsFd = await openDir('/proc/self/fd');
  const fds = await readAll(fdsFd, 4096);
  assert.equal(fds.map((entry) => entry.name), ['.', '..', ...sandbox.fdTable.openFds().map(String)]);
  assert.ok(fds.some((entry) => entry.name === String(fdsFd)));
  await sandbox.call('close', fdsFd);
});

test.run();
