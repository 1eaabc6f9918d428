import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

import { Errno, SysError } from '../src/errno.js';
import { AT_FDCWD, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_PATH, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY } from '../src/vfs/flags.js';
import { fakeTask, type FakeTask } from './vfs-fake-task.js';

const test = suite('vfs path resolution');

let base: string;
let root: string;
let sandbox: FakeTask;

test.before(() => {
  base = mkdtempSync(join(tmpdir(), 'tsvisor-vfs-'));
  root = join(base, 'root');
  mkdirSync(join(base, 'secret'));
  writeFileSync(join(base, 'secret', 'inside.txt'), 'secret\n');
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  writeFileSync(join(root, 'a', 'f.txt'), 'hello\n');
  writeFileSync(join(root, 'prog'), '#!/bin/sh\n', { mode: 0o755 });
  symlinkSync('/a', join(root, 'abs'));
  symlinkSync('a/f.txt', join(root, 'rel'));
  symlinkSync('../../../secret', join(root, 'up'));
  symlinkSync(join(base, 'secret', 'inside.txt'), join(root, 'hostabs'));
  symlinkSync('loop2', join(root, 'loop1'));
  symlinkSync('loop1', join(root, 'loop2'));
  symlinkSync('missing', join(root, 'dangling'));
  sandbox = fakeTask(root, { exePath: '/prog' });
});

test.after(() => {
  sandbox.close();
  rmSync(base, { recursive: true, force: true });
});

/** Returns the errno a VFS call throws, or 0 when it succeeds. */
function errnoOf(operation: () => unknown): number {
  try {
    const result = operation() as { decRef?: () => void } | undefined;
    result?.decRef?.();
    return 0;
  } catch (error) {
    if (error instanceof SysError) return error.errno;
    throw error;
  }
}

function resolvedPath(path: string, follow = true): string {
  return sandbox.vfs.resolve(sandbox.task.fs, AT_FDCWD, path, follow, sandbox.task).path;
}

async function readWhole(path: string): Promise<string> {
  const fd = await sandbox.call('open', sandbox.memory.string(path), O_RDONLY);
  assert.ok(fd >= 0, `open ${path} failed with ${fd}`);
  const buffer = sandbox.memory.alloc(256);
  const n = await sandbox.call('read', fd, buffer, 256);
  await sandbox.call('close', fd);
  return sandbox.memory.copyIn(buffer, n).toString();
}

test('dot-dot at the root stays at the root', () => {
  assert.is(resolvedPath('/../../..'), '/');
  assert.is(resolvedPath('/a/../../a/b/..'), '/a');
  assert.is(errnoOf(() => resolvedPath('/../secret/inside.txt')), Errno.ENOENT);
});

test('symlinks cannot leave the root', () => {
  assert.is(errnoOf(() => resolvedPath('/up/inside.txt')), Errno.ENOENT);
  assert.is(errnoOf(() => resolvedPath('/hostabs')), Errno.ENOENT);
  assert.is(resolvedPath('/up', false), '/up');
});

test('absolute symlink resolves inside the root', async () => {
  assert.is(resolvedPath('/abs/f.txt'), '/a/f.txt');
  assert.is(await readWhole('/abs/f.txt'), 'hello\n');
  assert.is(await readWhole('rel'), 'hello\n');
});

test('symlink loops fail with ELOOP', () => {
  assert.is(errnoOf(() => resolvedPath('/loop1')), Errno.ELOOP);
  assert.is(errnoOf(() => resolvedPath('/loop1/x')), Errno.ELOOP);
  assert.is(resolvedPath('/loop1', false), '/loop1');
});

test('missing and non-directory components', () => {
  assert.is(errnoOf(() => resolvedPath('/nope')), Errno.ENOENT);
  assert.is(errnoOf(() => resolvedPath('/dangling')), Errno.ENOENT);
  assert.is(errnoOf(() => resolvedPath('')), Errno.ENOENT);
  assert.is(errnoOf(() => resolvedPath('/a/f.txt/x')), Errno.ENOTDIR);
  assert.is(errnoOf(() => resolvedPath('/a/f.txt/')), Errno.ENOTDIR);
  assert.is(resolvedPath('/abs/'), '/a');
});

test('overlong names fail with ENAMETOOLONG', () => {
  assert.is(errnoOf(() => resolvedPath('/' + 'x'.repeat(256))), Errno.ENAMETOOLONG);
  assert.is(errnoOf(() => resolvedPath('/a/' + 'y/'.repeat(2100))), Errno.ENAMETOOLONG);
});

test('open errno on the read-only host view', async () => {
  const open = (path: string, flags: number) => sandbox.call('open', sandbox.memory.string(path), flags, 0o644);
  assert.is(await open('/a/f.txt', O_WRONLY), -Errno.EROFS);
  assert.is(await open('/a/f.txt', O_RDWR), -Errno.EROFS);
  assert.is(await open('/a/f.txt', O_RDONLY | O_TRUNC), -Errno.EROFS);
  assert.is(await open('/a/new.txt', O_WRONLY | O_CREAT), -Errno.EROFS);
  assert.is(await open('/nodir/new.txt', O_WRONLY | O_CREAT), -Errno.ENOENT);
  assert.is(await open('/a/f.txt', O_WRONLY | O_CREAT | O_EXCL), -Errno.EEXIST);
  assert.is(await open('/a', O_WRONLY), -Errno.EISDIR);
  assert.is(await open('/a/f.txt', O_RDONLY | O_DIRECTORY), -Errno.ENOTDIR);
  assert.is(await open('/rel', O_RDONLY | O_NOFOLLOW), -Errno.ELOOP);
  assert.is(await sandbox.call('open', 0x10, O_RDONLY), -Errno.EFAULT);
});

test('O_PATH opens a symlink itself', async () => {
  const fd = await sandbox.call('open', sandbox.memory.string('/rel'), O_PATH | O_NOFOLLOW);
  assert.ok(fd >= 0);
  assert.is(await sandbox.call('read', fd, sandbox.memory.alloc(8), 8), -Errno.EBADF);
  const buffer = sandbox.memory.alloc(64);
  assert.is(await sandbox.call('readlinkat', fd, sandbox.memory.string(''), buffer, 64), 'a/f.txt'.length);
  assert.is(sandbox.memory.copyIn(buffer, 7).toString(), 'a/f.txt');
  assert.is(await sandbox.call('close', fd), 0);
});

test('openat relative to a directory descriptor', async () => {
  const dirfd = await sandbox.call('open', sandbox.memory.string('/a'), O_RDONLY | O_DIRECTORY);
  assert.ok(dirfd >= 0);
  const fd = await sandbox.call('openat', dirfd, sandbox.memory.string('f.txt'), O_RDONLY);
  assert.ok(fd >= 0);
  const fileFd = fd;
  assert.is(await sandbox.call('openat', fileFd, sandbox.memory.string('x'), O_RDONLY), -Errno.ENOTDIR);
  assert.is(await sandbox.call('openat', 999, sandbox.memory.string('x'), O_RDONLY), -Errno.EBADF);
  // A C int in a 64-bit register: AT_FDCWD arrives with the upper 32 bits clear.
  const viaCwd = await sandbox.call('openat', 0xffffff9c, sandbox.memory.string('a/f.txt'), O_RDONLY);
  assert.ok(viaCwd >= 0, `openat with a zero-extended AT_FDCWD failed with ${viaCwd}`);
  // An absolute path ignores dirfd, even an invalid one.
  assert.ok((await sandbox.call('openat', 999, sandbox.memory.string('/a/f.txt'), O_RDONLY)) >= 0);
  for (const open of sandbox.fdTable.openFds()) await sandbox.call('close', open);
});

test('readlink and the cwd', async () => {
  const buffer = sandbox.memory.alloc(64);
  assert.is(await sandbox.call('readlink', sandbox.memory.string('/abs'), buffer, 64), 2);
  assert.is(sandbox.memory.copyIn(buffer, 2).toString(), '/a');
  assert.is(await sandbox.call('readlink', sandbox.memory.string('/abs'), buffer, 1), 1);
  assert.is(await sandbox.call('readlink', sandbox.memory.string('/a'), buffer, 64), -Errno.EINVAL);
  assert.is(await sandbox.call('readlink', sandbox.memory.string('/abs'), buffer, 0), -Errno.EINVAL);

  assert.is(await sandbox.call('chdir', sandbox.memory.string('/abs/b')), 0);
  assert.is(await sandbox.call('getcwd', buffer, 64), '/a/b'.length + 1);
  assert.is(sandbox.memory.copyIn(buffer, 5).toString('latin1'), '/a/b\0');
  assert.is(await sandbox.call('getcwd', buffer, 4), -Errno.ERANGE);
  assert.is(await readWhole('../f.txt'), 'hello\n');
  assert.is(await sandbox.call('chdir', sandbox.memory.string('/a/f.txt')), -Errno.ENOTDIR);
  assert.is(await sandbox.call('chdir', sandbox.memory.string('/')), 0);
});

test('proc self exe names the executable', async () => {
  const buffer = sandbox.memory.alloc(64);
  const n = await sandbox.call('readlink', sandbox.memory.string('/proc/self/exe'), buffer, 64);
  assert.is(n, '/prog'.length);
  assert.is(sandbox.memory.copyIn(buffer, n).toString(), '/prog');
  assert.is(await sandbox.call('readlinkat', AT_FDCWD, sandbox.memory.string('/proc/self'), buffer, 64), 1);
  assert.is(sandbox.memory.copyIn(buffer, 1).toString(), '1');
  assert.is(await readWhole('/proc/self/exe'), '#!/bin/sh\n');
  assert.is(await readWhole('/proc/1/exe'), '#!/bin/sh\n');
  assert.is(errnoOf(() => resolvedPath('/proc/2/exe')), Errno.ENOENT);
});

test('proc self fd links lead to the open files', async () => {
  const memory = sandbox.memory;
  const fd = await sandbox.call('open', memory.string('/a/f.txt'), O_RDONLY);
  const dirfd = await sandbox.call('open', memory.string('/a'), O_RDONLY | O_DIRECTORY);
  const buffer = memory.alloc(64);

  const n = await sandbox.call('readlink', memory.string(`/proc/self/fd/${fd}`), buffer, 64);
  assert.is(memory.copyIn(buffer, n).toString(), '/a/f.txt');
  assert.is(await sandbox.call('read', fd, buffer, 2), 2);

  // Reopening gives a new description with its own offset.
  const again = await sandbox.call('open', memory.string(`/proc/self/fd/${fd}`), O_RDONLY);
  assert.ok(again >= 0, `reopen failed with ${again}`);
  assert.is(await sandbox.call('read', again, buffer, 6), 6);
  assert.is(memory.copyIn(buffer, 6).toString(), 'hello\n');
  assert.is(await sandbox.call('open', memory.string(`/proc/self/fd/${fd}`), O_WRONLY), -Errno.EROFS);

  assert.is(await readWhole(`/proc/self/fd/${dirfd}/f.txt`), 'hello\n');
  assert.is(await sandbox.call('chdir', memory.string(`/proc/self/fd/${dirfd}`)), 0);
  assert.is(sandbox.task.fs.cwd, '/a');
  assert.is(await sandbox.call('chdir', memory.string('/')), 0);
  assert.is(await sandbox.call('open', memory.string(`/proc/self/fd/${fd}/x`), O_RDONLY), -Errno.ENOTDIR);
  assert.is(await sandbox.call('open', memory.string('/proc/self/fd/999'), O_RDONLY), -Errno.ENOENT);

  for (const open of [fd, dirfd, again]) await sandbox.call('close', open);
  assert.is(await sandbox.call('open', memory.string(`/proc/self/fd/${fd}`), O_RDONLY), -Errno.ENOENT);
});

test('openExecutable checks the file', () => {
  const opened = sandbox.vfs.openExecutable(sandbox.task.fs, '/prog', sandbox.task);
  assert.is(opened.path, '/prog');
  opened.file.decRef();
  assert.is(errnoOf(() => sandbox.vfs.openExecutable(sandbox.task.fs, '/a/f.txt', sandbox.task)), Errno.EACCES);
  assert.is(errnoOf(() => sandbox.vfs.openExecutable(sandbox.task.fs, '/a', sandbox.task)), Errno.EACCES);
  assert.is(errnoOf(() => sandbox.vfs.openExecutable(sandbox.task.fs, '/missing', sandbox.task)), Errno.ENOENT);
});

test('root that does not exist is one clear error', () => {
  let message = '';
  try {
    fakeTask(join(base, 'does-not-exist'));
  } catch (error) {
    message = (error as Error).message;
  }
  assert.match(message, /cannot use .*does-not-exist as the sandbox root: no such directory/);
});

test.run();
