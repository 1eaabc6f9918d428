/**
 * socketpair end to end: a static C program (test/fixtures/socketpair/socketpair.c) runs natively
 * and in the sandbox on every platform and must print the same lines. So must Python's asyncio,
 * whose event loop wakes itself through a socketpair, and a multiprocessing.Pipe between two
 * processes.
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
const PIPE_SCRIPT = path.join(__dirname, 'fixtures', 'socketpair', 'pipe.py');
const ASYNCIO = 'import asyncio; asyncio.run(asyncio.sleep(0.1)); print("ok")';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-socketpair-'));
const program = path.join(dir, 'socketpair');
execFileSync('gcc', ['-static', '-O1', '-o', program, path.join(__dirname, 'fixtures', 'socketpair', 'socketpair.c')], { stdio: 'pipe' });

const baseline = recordHostBaseline();
const native = runNative([program], dir, ENV);
const nativeText = native.stdout.toString();

const nativeSuite = suite('socketpair program natively');
nativeSuite('reports every case', () => {
  assert.is(native.status, 0);
  assert.match(nativeText, 'data: hello world\n');
  assert.match(nativeText, 'read from closed peer: -1 ECONNRESET\n');
  assert.match(nativeText, 'sigpipe after nosignal: 0\n');
  assert.match(nativeText, 'sigpipe after send: 2\n');
  assert.match(nativeText, 'seqpacket read short: 2\n');
  assert.match(nativeText, 'dgram send again: -1 ENOTCONN\n');
  assert.match(nativeText, 'epoll events in=1 rdhup=1 hup=1 data 7\n');
});
nativeSuite.run();

for (const platform of testPlatforms()) {
  const test = suite(`socketpair on ${platform}`);

  test('C program matches native', async () => {
    const sandboxed = await runInSandbox([program], dir, ENV, { platform });
    assertSameLines(sandboxed, native, platform);
  });

  test('python asyncio event loop', async () => {
    const argv = [PYTHON, '-c', ASYNCIO];
    const expected = runNative(argv, dir, ENV);
    const sandboxed = await runInSandbox(argv, dir, ENV, { platform });
    assert.is(expected.stdout.toString(), 'ok\n');
    assert.is(sandboxed.stdout.toString(), expected.stdout.toString(), `stdout; sandbox stderr: ${sandboxed.stderr}`);
    assert.is(sandboxed.status, expected.status);
  });

  test('python multiprocessing pipe', async () => {
    const argv = [PYTHON, PIPE_SCRIPT];
    const expected = runNative(argv, dir, ENV);
    const sandboxed = await runInSandbox(argv, dir, ENV, { platform });
    assert.is(expected.stdout.toString(), "{'n': 42}\nexit 0\n");
    assert.is(sandboxed.stdout.toString(), expected.stdout.toString(), `stdout; sandbox stderr: ${sandboxed.stderr}`);
    assert.is(sandboxed.status, expected.status);
  });

  test.run();
}

const cleanup = suite('after the socketpair programs');
cleanup('no process or memfd is left', async () => {
  await assertNothingLeft(baseline);
  fs.rmSync(dir, { recursive: true, force: true });
});
cleanup.run();
