/**
 * A platform that cannot create one more context raises PlatformLimitError, and clone then fails
 * with EAGAIN instead of ending the sandbox. A wrapper platform caps the live contexts of each
 * installed platform at 16, and a program creates threads until pthread_create fails. Without the
 * cap, every platform runs 1000 threads at once, as natively.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPlatform, PlatformLimitError, registerPlatform, type Context, type Platform } from '@tsvisor/platform-api';
import { assertNothingLeft, recordHostBaseline, runInSandbox, runNative, testPlatforms } from './helpers/host.js';

const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];
const CONTEXT_CAP = 16;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-thread-limit-'));
const program = path.join(dir, 'thread-limit');
execFileSync('gcc', ['-static', '-pthread', '-O2', '-o', program, path.join(__dirname, 'fixtures', 'thread-limit.c')]);
const baseline = recordHostBaseline();

/** Wraps `inner` so that newContext raises PlatformLimitError while CONTEXT_CAP contexts are live. */
function capContexts(inner: Platform): Platform {
  let live = 0;
  return {
    name: inner.name,
    supports: inner.supports,
    minUserAddress: inner.minUserAddress,
    maxUserAddress: inner.maxUserAddress,
    maxFileSize: inner.maxFileSize,
    newAddressSpace: () => inner.newAddressSpace(),
    newContext(): Context {
      if (live >= CONTEXT_CAP) throw new PlatformLimitError(`test: at most ${CONTEXT_CAP} live contexts`);
      const context = inner.newContext();
      live++;
      const release = context.release.bind(context);
      context.release = () => {
        live--;
        release();
      };
      return context;
    },
    close: () => inner.close(),
  };
}

const native = runNative([program, '1000'], dir, ENV);

for (const platform of testPlatforms()) {
  const capped = `${platform}-capped-for-test`;
  registerPlatform({
    name: capped,
    description: `${platform} with at most ${CONTEXT_CAP} live contexts`,
    rank: () => 0,
    probe: () => ({ available: true, reason: '' }),
    create: (options) => capContexts(createPlatform(platform, options)),
  });

  const test = suite(`thread limit on ${platform}`);

  test('pthread_create fails with EAGAIN', async () => {
    const result = await runInSandbox([program, '1000'], dir, ENV, { platform: capped });
    // The main thread uses one context, so CONTEXT_CAP - 1 threads fit.
    assert.is(
      result.stdout.toString(),
      `pthread_create failed after ${CONTEXT_CAP - 1} threads: EAGAIN\njoined ${CONTEXT_CAP - 1} threads\n`,
    );
    assert.is(result.status, 0, result.stderr);
  });

  test('1000 threads run as natively', async () => {
    const result = await runInSandbox([program, '1000'], dir, ENV, { platform });
    assert.is(result.stdout.toString(), native.stdout.toString());
    assert.is(result.stdout.toString(), 'created 1000 threads\njoined 1000 threads\n');
    assert.is(result.status, native.status, result.stderr);
  });

  test('nothing is left behind', async () => {
    await assertNothingLeft(baseline);
  });

  test.run();
}

process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
