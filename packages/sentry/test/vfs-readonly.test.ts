import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

import { Errno } from '../src/errno.js';
import { AT_FDCWD, AT_REMOVEDIR, O_RDONLY } from '../src/vfs/flags.js';
import { fakeTask, type FakeTask } from './vfs-fake-task.js';

const test = suite('vfs read-only host view');

let root: string;
let sandbox: FakeTask;

test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'tsvisor-readonly-'));
  mkdirSync(join(root, 'dir'));
  writeFileSync(join(root, 'file'), 'content');
  symlinkSync('file', join(root, 'link'));
  sandbox = fakeTask(root);
});

test.after(() => {
  sandbox.close();
  rmSync(root, { recursive: true, force: true });
});

const path = (text: string) => sandbox.memory.string(text);

test('entry changes fail like a read-only mount', async () => {
  const cases: Array<[string, Promise<number>, number]> = [
    ['mkdir new', sandbox.call('mkdir', path('/new'), 0o755), -Errno.EROFS],
    ['mkdir existing', sandbox.call('mkdir', path('/dir'), 0o755), -Errno.EEXIST],
    ['mkdir missing parent', sandbox.call('mkdir', path('/none/new'), 0o755), -Errno.ENOENT],
    ['mkdirat below a file', sandbox.call('mkdirat', AT_FDCWD, path('/file/new'), 0o755), -Errno.ENOTDIR],
    ['unlink', sandbox.call('unlink', path('/file'), 0), -Errno.EROFS],
    ['unlink missing parent', sandbox.call('unlink', path('/none/x'), 0), -Errno.ENOENT],
    ['unlinkat bad flags', sandbox.call('unlinkat', AT_FDCWD, path('/file'), 0x1), -Errno.EINVAL],
    ['rmdir', sandbox.call('rmdir', path('/dir')), -Errno.EROFS],
    ['rmdir dot', sandbox.call('unlinkat', AT_FDCWD, path('/dir/.'), AT_REMOVEDIR), -Errno.EINVAL],
    ['rename', sandbox.call('rename', path('/file'), path('/other')), -Errno.EROFS],
    ['symlink existing', sandbox.call('symlink', path('x'), path('/link')), -Errno.EEXIST],
    ['symlink new', sandbox.call('symlink', path('x'), path('/link2')), -Errno.EROFS],
    ['link directory', sandbox.call('link', path('/dir'), path('/dir2')), -Errno.EROFS],
    ['unlink missing', sandbox.call('unlink', path('/missing')), -Errno.EROFS],
    ['link missing', sandbox.call('link', path('/none'), path('/x')), -Errno.ENOENT],
  ];
  for (const [name, pending, expected] of cases) assert.is(await pending, expected, name);
  assert.not.ok(existsSync(join(root, 'new')));
  assert.ok(existsSync(join(root, 'file')));
});

test('attribute changes fail like a read-only mount', async () => {
  const fd = await sandbox.call('open', path('/file'), O_RDONLY);
  const before = statSync(join(root, 'file'));
  const cases: Array<[string, Promise<number>, number]> = [
    ['chmod', sandbox.call('chmod', path('/file'), 0o777), -Errno.EROFS],
    ['chmod missing', sandbox.call('chmod', path('/none'), 0o777), -Errno.ENOENT],
    ['fchmod', sandbox.call('fchmod', fd, 0o777), -Errno.EROFS],
    ['chown', sandbox.call('chown', path('/file'), 0, 0), -Errno.EROFS],
    ['utimensat', sandbox.call('utimensat', AT_FDCWD, path('/file'), 0, 0), -Errno.EROFS],
    ['truncate', sandbox.call('truncate', path('/file'), 0), -Errno.EROFS],
    ['truncate directory', sandbox.call('truncate', path('/dir'), 0), -Errno.EISDIR],
    ['ftruncate read-only fd', sandbox.call('ftruncate', fd, 0), -Errno.EINVAL],
    ['fsync', sandbox.call('fsync', fd), 0],
    ['fsync bad fd', sandbox.call('fsync', 99), -Errno.EBADF],
  ];
  for (const [name, pending, expected] of cases) assert.is(await pending, expected, name);
  await sandbox.call('close', fd);
  const after = statSync(join(root, 'file'));
  assert.is(after.mode, before.mode);
  assert.is(readFileSync(join(root, 'file'), 'utf8'), 'content');
});

test('write to a read-only descriptor is EBADF', async () => {
  const fd = await sandbox.call('open', path('/file'), O_RDONLY);
  const data = path('xyz');
  assert.is(await sandbox.call('write', fd, data, 3), -Errno.EBADF);
  assert.is(await sandbox.call('pwrite64', fd, data, 3, 0), -Errno.EBADF);
  const dirFd = await sandbox.call('open', path('/dir'), O_RDONLY);
  assert.is(await sandbox.call('read', dirFd, data, 3), -Errno.EISDIR);
  await sandbox.call('close', fd);
  await sandbox.call('close', dirFd);
  assert.is(readFileSync(join(root, 'file'), 'utf8'), 'content');
});

test.run();
