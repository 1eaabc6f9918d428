/**
 * Shared futexes across processes, end to end: static C programs run natively and in the sandbox
 * on every platform and must print the same lines. In the first, a parent and a forked child hand
 * turns through a process-shared mutex and condition variable in MAP_SHARED memory. The second
 * makes raw futex(2) calls: shared futexes must meet across processes at different addresses,
 * private ones and those in private pages must not, and bad words fail with EFAULT or EINVAL.
 * In the third, a thread of a child exits holding a robust process-shared mutex its parent waits for.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import { assertNothingLeft, compareWithNative, recordHostBaseline, testPlatforms } from './helpers/host.js';

const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];
const FIXTURES = path.join(__dirname, 'fixtures', 'futex');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-futex-'));
for (const program of ['shared-condvar', 'cross-process', 'robust-mutex']) {
  execFileSync('gcc', ['-static', '-pthread', '-O2', '-o', path.join(dir, program), path.join(FIXTURES, `${program}.c`)]);
}

const baseline = recordHostBaseline();

for (const platform of testPlatforms()) {
  const test = suite(`shared futexes on ${platform}`);

  test('process-shared condvar hand-off', async () => {
    await compareWithNative(platform, [path.join(dir, 'shared-condvar')], dir, ENV);
  });

  test('raw futex across processes', async () => {
    await compareWithNative(platform, [path.join(dir, 'cross-process')], dir, ENV);
  });

  test('robust mutex of a dead child', async () => {
    await compareWithNative(platform, [path.join(dir, 'robust-mutex')], dir, ENV);
  });

  test.run();
}

const cleanup = suite('shared futex programs afterwards');
cleanup('leave no process or memfd behind', async () => {
  try {
    await assertNothingLeft(baseline);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
cleanup.run();
