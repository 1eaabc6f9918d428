/**
 * Futex wake and requeue counts, end to end: a static C program runs natively and in the sandbox
 * on every platform and must print the same lines. FUTEX_WAKE and FUTEX_WAKE_OP wake one waiter
 * for a count of zero or less, FUTEX_CMP_REQUEUE rejects negative counts with EINVAL, and a
 * requeue onto the same word counts the waiters it leaves in place.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import { assertNothingLeft, compareWithNative, recordHostBaseline, testPlatforms } from './helpers/host.js';

const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-futex-counts-'));
const program = path.join(dir, 'counts');
execFileSync('gcc', ['-static', '-pthread', '-O2', '-o', program, path.join(__dirname, 'fixtures', 'futex', 'counts.c')]);

const baseline = recordHostBaseline();

for (const platform of testPlatforms()) {
  const test = suite(`futex counts on ${platform}`);

  test('zero, negative and same-word counts', async () => {
    await compareWithNative(platform, [program], dir, ENV);
  });

  test.run();
}

const cleanup = suite('futex counts program afterwards');
cleanup('leave no process or memfd behind', async () => {
  try {
    await assertNothingLeft(baseline);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
cleanup.run();
