import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

import { Errno } from '../src/errno.js';
import {
  F_DUPFD,
  F_DUPFD_CLOEXEC,
  F_GETFD,
  F_GETFL,
  F_SETFD,
  F_SETFL,
  FD_CLOEXEC,
  O_APPEND,
  O_CLOEXEC,
  O_LARGEFILE,
  O_NONBLOCK,
  O_RDONLY,
  SEEK_CUR,
  SEEK_END,
  SEEK_SET,
} from '../src/vfs/flags.js';
import { fakeTask, type FakeTask } from './vfs-fake-task.js';

const test = suite('vfs descriptors and file I/O');

const CONTENT = 'abcdefghijklmnopqrstuvwxyz';
let root: string;
let sandbox: FakeTask;

test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'tsvisor-fd-'));
  writeFileSync(join(root, 'letters'), CONTENT);
  sandbox = fakeTask(root);
});

test.after(() => {
  sandbox.close();
  rmSync(root, { recursive: true, force: true });
});

const openLetters = (flags = O_RDONLY) => sandbox.call('open', sandbox.memory.string('/letters'), flags);

async function readText(fd: number, count: number): Promise<string> {
  const buffer = sandbox.memory.alloc(count);
  const n = await sandbox.call('read', fd, buffer, count);
  assert.ok(n >= 0, `read failed with ${n}`);
  return sandbox.memory.copyIn(buffer, n).toString();
}

test('lowest free descriptor and EBADF', async () => {
  const first = await openLetters();
  const second = await openLetters();
  assert.is(first, 0);
  assert.is(second, 1);
  assert.is(await sandbox.call('close', first), 0);
  assert.is(await openLetters(), 0);
  assert.is(await sandbox.call('close', 0), 0);
  assert.is(await sandbox.call('close', 0), -Errno.EBADF);
  assert.is(await sandbox.call('close', second), 0);
  assert.is(await sandbox.call('read', -1, sandbox.memory.alloc(1), 1), -Errno.EBADF);
  assert.equal(sandbox.fdTable.openFds(), []);
});

test('dup shares the offset', async () => {
  const fd = await openLetters();
  const copy = await sandbox.call('dup', fd);
  assert.is(copy, fd + 1);
  assert.is(await readText(fd, 3), 'abc');
  assert.is(await readText(copy, 3), 'def');
  assert.is(await sandbox.call('lseek', copy, 0, SEEK_CUR), 6);

  assert.is(await sandbox.call('dup2', fd, 10), 10);
  assert.is(await readText(10, 2), 'gh');
  assert.is(await sandbox.call('dup2', fd, fd), fd);
  assert.is(await sandbox.call('dup3', fd, fd, 0), -Errno.EINVAL);
  assert.is(await sandbox.call('dup3', fd, 11, O_CLOEXEC), 11);
  assert.is(await sandbox.call('fcntl', 11, F_GETFD), FD_CLOEXEC);
  assert.is(await sandbox.call('dup2', 99, 12), -Errno.EBADF);
  assert.is(await sandbox.call('dup2', fd, 5000), -Errno.EBADF);

  // The description stays open until its last descriptor closes.
  await sandbox.call('close', fd);
  await sandbox.call('close', copy);
  await sandbox.call('close', 10);
  assert.is(await readText(11, 2), 'ij');
  await sandbox.call('close', 11);
});

test('fcntl descriptor and status flags', async () => {
  const fd = await openLetters(O_RDONLY | O_CLOEXEC);
  assert.is(await sandbox.call('fcntl', fd, F_GETFD), FD_CLOEXEC);
  assert.is(await sandbox.call('fcntl', fd, F_SETFD, 0), 0);
  assert.is(await sandbox.call('fcntl', fd, F_GETFD), 0);

  assert.is(await sandbox.call('fcntl', fd, F_GETFL), O_RDONLY | O_LARGEFILE);
  assert.is(await sandbox.call('fcntl', fd, F_SETFL, O_NONBLOCK | O_APPEND | 0o1), 0);
  // F_SETFL changes only O_APPEND, O_NONBLOCK and a few others, never the access mode.
  assert.is(await sandbox.call('fcntl', fd, F_GETFL), O_RDONLY | O_LARGEFILE | O_NONBLOCK | O_APPEND);

  assert.is(await sandbox.call('fcntl', fd, F_DUPFD, 20), 20);
  assert.is(await sandbox.call('fcntl', 20, F_GETFD), 0);
  assert.is(await sandbox.call('fcntl', fd, F_DUPFD_CLOEXEC, 20), 21);
  assert.is(await sandbox.call('fcntl', 21, F_GETFD), FD_CLOEXEC);
  assert.is(await sandbox.call('fcntl', fd, F_DUPFD, -1), -Errno.EINVAL);
  assert.is(await sandbox.call('fcntl', fd, 9999), -Errno.EINVAL);
  assert.is(await sandbox.call('fcntl', 77, F_GETFD), -Errno.EBADF);

  sandbox.fdTable.closeOnExec();
  assert.equal(sandbox.fdTable.openFds(), [fd, 20]);
  sandbox.fdTable.closeAll();
});

test('descriptor limit gives EMFILE', async () => {
  const saved = sandbox.fdTable.limit;
  sandbox.fdTable.limit = 3;
  assert.is(await openLetters(), 0);
  assert.is(await openLetters(), 1);
  assert.is(await openLetters(), 2);
  assert.is(await openLetters(), -Errno.EMFILE);
  assert.is(await sandbox.call('dup', 0), -Errno.EMFILE);
  sandbox.fdTable.closeAll();
  sandbox.fdTable.limit = saved;
});

test('lseek, pread and vectored reads', async () => {
  const fd = await openLetters();
  assert.is(await sandbox.call('lseek', fd, -3, SEEK_END), CONTENT.length - 3);
  assert.is(await readText(fd, 10), 'xyz');
  assert.is(await readText(fd, 10), '');
  assert.is(await sandbox.call('lseek', fd, -1, SEEK_SET), -Errno.EINVAL);
  assert.is(await sandbox.call('lseek', fd, 0, 7), -Errno.EINVAL);
  assert.is(await sandbox.call('lseek', fd, 100, SEEK_SET), 100);
  assert.is(await readText(fd, 10), '');

  const buffer = sandbox.memory.alloc(8);
  assert.is(await sandbox.call('pread64', fd, buffer, 4, 10), 4);
  assert.is(sandbox.memory.copyIn(buffer, 4).toString(), 'klmn');
  assert.is(await sandbox.call('lseek', fd, 0, SEEK_CUR), 100);
  assert.is(await sandbox.call('pread64', fd, buffer, 4, -1), -Errno.EINVAL);

  // Two iovecs: 3 bytes then 5 bytes, filled in order from the offset.
  await sandbox.call('lseek', fd, 0, SEEK_SET);
  const first = sandbox.memory.alloc(3);
  const second = sandbox.memory.alloc(5);
  const iov = sandbox.memory.alloc(32);
  const vectors = Buffer.alloc(32);
  vectors.writeBigUInt64LE(BigInt(first), 0);
  vectors.writeBigUInt64LE(3n, 8);
  vectors.writeBigUInt64LE(BigInt(second), 16);
  vectors.writeBigUInt64LE(5n, 24);
  sandbox.memory.copyOut(iov, vectors);
  assert.is(await sandbox.call('readv', fd, iov, 2), 8);
  assert.is(sandbox.memory.copyIn(first, 3).toString(), 'abc');
  assert.is(sandbox.memory.copyIn(second, 5).toString(), 'defgh');
  assert.is(await sandbox.call('readv', fd, iov, 1025), -Errno.EINVAL);
  assert.is(await sandbox.call('readv', fd, 0x10, 1), -Errno.EFAULT);
  assert.is(await sandbox.call('read', fd, 0x10, 4), -Errno.EFAULT);
  await sandbox.call('close', fd);
});

test('sendfile copies and moves the offset', async () => {
  // The host view is read-only, so the output is /dev/null, seen through a sandbox rooted at "/".
  const devices = fakeTask('/');
  const devNull = await devices.call('open', devices.memory.string('/dev/null'), 0o1);
  assert.ok(devNull >= 0);
  const devicesInput = await devices.call('open', devices.memory.string(join(root, 'letters')), O_RDONLY);

  assert.is(await devices.call('sendfile', devNull, devicesInput, 0, 10), 10);
  assert.is(await devices.call('lseek', devicesInput, 0, SEEK_CUR), 10);

  const offset = devices.memory.alloc(8);
  devices.memory.copyOut(offset, Buffer.from([20, 0, 0, 0, 0, 0, 0, 0]));
  assert.is(await devices.call('sendfile', devNull, devicesInput, offset, 100), CONTENT.length - 20);
  assert.is(devices.memory.copyIn(offset, 8).readBigInt64LE(0), BigInt(CONTENT.length));
  assert.is(await devices.call('lseek', devicesInput, 0, SEEK_CUR), 10);

  // The output must be open for writing, the input for reading.
  assert.is(await devices.call('sendfile', devicesInput, devNull, 0, 10), -Errno.EBADF);
  devices.close();
});

test.run();
