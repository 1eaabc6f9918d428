/**
 * Advisory file locks, end to end: static C programs, a Python lockf script and a Perl flock
 * one-liner run natively and in the sandbox on every platform and must print the same lines and
 * exit the same way. The C programs cover flock between descriptions, processes and exits, POSIX
 * record locks with F_GETLK, ranges, release on close and at exit, EDEADLK and EINTR, open file
 * description locks, and the threads of one process.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { assertNothingLeft, compareWithNative, recordHostBaseline, testPlatforms } from './helpers/host.js';

const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];
const FIXTURES = path.join(__dirname, 'fixtures', 'locks');
const PERL_FLOCK = 'open my $f, "<", "/etc/hostname" or die "open: $!"; flock($f, 1) or die "flock: $!"; print "shared lock on a read-only file\\n"';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-locks-'));
for (const program of ['flock', 'records', 'ofd', 'threads']) {
  execFileSync('gcc', ['-static', '-pthread', '-O2', '-o', path.join(dir, program), path.join(FIXTURES, `${program}.c`)]);
}

const baseline = recordHostBaseline();

for (const platform of testPlatforms()) {
  const test = suite(`file locks on ${platform}`);

  test('flock between descriptions and processes', async () => {
    const output = await compareWithNative(platform, [path.join(dir, 'flock')], dir, ENV);
    assert.match(output.toString(), 'other description, exclusive: EAGAIN');
    assert.match(output.toString(), 'child, blocking lock: 0');
    assert.match(output.toString(), 'blocking lock interrupted: EINTR');
  });

  test('fcntl record locks and ranges', async () => {
    const output = await compareWithNative(platform, [path.join(dir, 'records')], dir, ENV);
    assert.match(output.toString(), 'child, write over all: write lock at 10 length 10, pid expected');
    assert.match(output.toString(), 'parent, wait for the child\'s lock: 0');
    assert.match(output.toString(), 'parent, wait for byte 1: EDEADLK');
  });

  test('open file description locks', async () => {
    const output = await compareWithNative(platform, [path.join(dir, 'ofd')], dir, ENV);
    assert.match(output.toString(), 'second open asks: write at 0 length 10 pid -1');
  });

  test('locks and threads', async () => {
    const output = await compareWithNative(platform, [path.join(dir, 'threads')], dir, ENV);
    assert.match(output.toString(), 'thread, write lock over the main thread\'s: 0');
    assert.match(output.toString(), 'thread, wait for the lock: EBADF');
  });

  test('python lockf', async () => {
    const output = await compareWithNative(platform, ['/usr/bin/python3', path.join(FIXTURES, 'lockf.py')], dir, ENV);
    assert.is(output.toString(), 'child: EAGAIN\nread-only host file: shared lock\n');
  });

  test('perl flock one-liner', async () => {
    const output = await compareWithNative(platform, ['/usr/bin/perl', '-e', PERL_FLOCK], dir, ENV);
    assert.is(output.toString(), 'shared lock on a read-only file\n');
  });

  test.run();
}

const cleanup = suite('file lock programs afterwards');
cleanup('leave no process or memfd behind', async () => {
  try {
    await assertNothingLeft(baseline);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
cleanup.run();
