/**
 * FUTEX_WAKE_OP end to end: a static C program runs natively and in the sandbox on every platform
 * and must print the same lines. Four threads add to one word through FUTEX_WAKE_OP while a fifth
 * adds to it with locked instructions, so a read-modify-write in the sentry that is not atomic
 * loses adds. The program also checks each operation and comparison, EFAULT and EINVAL, and words
 * in untouched and copy-on-write pages.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { assertNothingLeft, compareWithNative, recordHostBaseline, testPlatforms } from './helpers/host.js';

const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-futex-wake-op-'));
const program = path.join(dir, 'wake-op');
execFileSync('gcc', ['-static', '-pthread', '-O2', '-o', program, path.join(__dirname, 'fixtures', 'futex', 'wake-op.c')]);

const baseline = recordHostBaseline();

for (const platform of testPlatforms()) {
  const test = suite(`FUTEX_WAKE_OP on ${platform}`);

  test('atomic adds, operations and faults', async () => {
    const stdout = (await compareWithNative(platform, [program], dir, ENV)).toString('latin1');
    assert.match(stdout, 'adds lost while a thread added with locked instructions: 0\n');
  });

  test.run();
}

const cleanup = suite('FUTEX_WAKE_OP program afterwards');
cleanup('leave no process or memfd behind', async () => {
  try {
    await assertNothingLeft(baseline);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
cleanup.run();
