/**
 * Signals, timers and pipes end to end: small C programs (test/fixtures/signals) built with
 * gcc -static run natively and in the sandbox on every platform that can run here, and must give
 * the same stdout and exit status. Each program prints one line per check, so a difference points
 * at the check that failed. Afterwards no stub process and no memfd may be left.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runSandbox } from '../src/index.js';
import { assertNothingLeft, compareWithNative, recordHostBaseline, testPlatforms } from './helpers/host.js';

const FIXTURES = path.join(__dirname, 'fixtures', 'signals');
const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-signals-'));
for (const name of ['handlers', 'faults', 'timers', 'pipes', 'stdin-read', 'stopped']) {
  execFileSync('gcc', ['-static', '-O1', '-o', path.join(dir, name), path.join(FIXTURES, `${name}.c`)]);
}

const hasAvx512 = /\bavx512f\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
if (hasAvx512) {
  execFileSync('gcc', ['-static', '-O1', '-mavx512f', '-o', path.join(dir, 'avx512'), path.join(FIXTURES, 'avx512.c')]);
}

const baseline = recordHostBaseline();
const available = testPlatforms();

const singleProcess: Array<[string, string[]]> = [
  ['handlers, masks and frames', ['handlers']],
  ['faults reach handlers', ['faults']],
  ['blocked SIGSEGV still kills', ['faults', 'blocked']],
  ['default SIGFPE kills', ['faults', 'default']],
  ['alarm, itimer and waits', ['timers']],
  ['stop signals, orphaned jobs and stopped processes', ['stopped']],
];

for (const platform of available) {
  const test = suite(`signals on ${platform}`);
  for (const [name, argv] of singleProcess) {
    test(name, async () => {
      await compareWithNative(platform, [path.join(dir, argv[0]), ...argv.slice(1)], dir, ENV);
    });
  }

  test('stdin read interrupted by alarm', async () => {
    // The host pipe's writer, a sleeping process, never writes, so only the signal can end the read.
    const writer = spawn('sleep', ['10'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const output = path.join(dir, `stdin-read-${platform}.out`);
    const stdout = fs.openSync(output, 'w+');
    try {
      const stdin = (writer.stdout as unknown as { _handle: { fd: number } })._handle.fd;
      const result = await runSandbox({ argv: [path.join(dir, 'stdin-read')], env: ENV, platform, stdio: [stdin, stdout, stdout] });
      assert.is(fs.readFileSync(output, 'utf8'), 'alarm\nread=-1 errno=Interrupted system call\n');
      assert.is(result.status, 0);
    } finally {
      fs.closeSync(stdout);
      writer.kill();
    }
  });

  // NOTE: the kvm platform passes only the x87 and SSE state to the sentry, so AVX-512 registers
  // do not survive the rewrite of the FPU state around a handler there.
  if (hasAvx512 && platform !== 'kvm') {
    test('AVX-512 state survives a handler', async () => {
      await compareWithNative(platform, [path.join(dir, 'avx512')], dir, ENV);
    });
  }

  test('pipes between processes', async () => {
    await compareWithNative(platform, [path.join(dir, 'pipes')], dir, ENV);
  });
  test.run();
}

const cleanup = suite('after the signal programs');

cleanup('at least one platform ran', () => {
  assert.ok(available.length > 0, 'no platform is available');
});

cleanup('no stub process or memfd is left', async () => {
  await assertNothingLeft(baseline);
});

cleanup.after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

cleanup.run();
