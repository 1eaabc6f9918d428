/**
 * epoll and eventfd end to end: a static C program (test/fixtures/epoll/epoll.c) runs natively and
 * in the sandbox on every platform and must print the same lines. So must a Python program that
 * waits on a child's pipe and an eventfd through the selectors module (EpollSelector).
 * asyncio, whose event loop also needs socketpair, is tested with the socketpair tests.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { assertNothingLeft, assertSameLines, recordHostBaseline, runInSandbox, runNative, testPlatforms } from './helpers/host.js';

const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];
const PYTHON = '/usr/bin/python3';
const SELECTOR_SCRIPT = path.join(__dirname, 'fixtures', 'epoll', 'selector.py');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-epoll-'));
const program = path.join(dir, 'epoll');
execFileSync('gcc', ['-static', '-O1', '-o', program, path.join(__dirname, 'fixtures', 'epoll', 'epoll.c')]);

const baseline = recordHostBaseline();
const native = runNative([program], dir, ENV);
const nativeText = native.stdout.toString();

const nativeSuite = suite('epoll program natively');
nativeSuite('reports every case', () => {
  assert.is(native.status, 0);
  assert.match(nativeText, 'edge after partial read: 0\n');
  assert.match(nativeText, 'oneshot after re-arm: 1\n');
  assert.match(nativeText, 'woken by child: 1\n');
  assert.match(nativeText, 'wait with SIGALRM: -1 EINTR\n');
  assert.match(nativeText, 'outer woken through inner: 1\n');
});
nativeSuite.run();

for (const platform of testPlatforms()) {
  const test = suite(`epoll on ${platform}`);

  test('C program matches native', async () => {
    const sandboxed = await runInSandbox([program], dir, ENV, { platform });
    assertSameLines(sandboxed, native, platform);
  });

  test('python selectors over pipe and eventfd', async () => {
    const argv = [PYTHON, SELECTOR_SCRIPT];
    const expected = runNative(argv, dir, ENV);
    const sandboxed = await runInSandbox(argv, dir, ENV, { platform });
    assert.match(expected.stdout.toString(), "EpollSelector\nidle: []\n['child: from child']\n");
    assert.is(sandboxed.stdout.toString(), expected.stdout.toString(), `stdout; sandbox stderr: ${sandboxed.stderr}`);
    assert.is(sandboxed.status, expected.status);
  });

  test.run();
}

const cleanup = suite('after the epoll programs');
cleanup('no process or memfd is left', async () => {
  await assertNothingLeft(baseline);
  fs.rmSync(dir, { recursive: true, force: true });
});
cleanup.run();
