/**
 * Credentials and resource limits compared with Linux: the set*id family with its EPERM cases,
 * saved-set-user-ID, supplementary groups, RLIMIT_NPROC stopping a fork loop once the ids are
 * dropped, and the limits the sandbox's init inherits from the host.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { descendants, openMemfds, runInSandbox, runNative, settledHostState, testPlatforms } from './helpers/host.js';

const FIXTURE = path.join(__dirname, 'fixtures', 'creds.c');
const BUSYBOX = '/usr/bin/busybox';
const LIMITS_SCRIPT = 'ulimit -n; ulimit -u; ulimit -s; ulimit -c; ulimit -i';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-creds-'));
const program = path.join(dir, 'creds');
execFileSync('gcc', ['-static', '-O2', '-o', program, FIXTURE], { stdio: ['ignore', 'ignore', 'pipe'] });
const isRoot = process.getuid?.() === 0;

for (const platform of testPlatforms()) {
  const test = suite(`credentials on ${platform}`);

  test('set*id family matches native', async () => {
    if (!isRoot) return;
    const native = runNative([program], dir, []);
    assert.is(native.status, 0);
    const before = descendants();
    const memfdsBefore = openMemfds();
    const run = await runInSandbox([program], dir, [], { platform });
    assert.is(run.status, 0, run.stderr);
    assert.fixture(run.stdout.toString(), native.stdout.toString());
    assert.match(run.stdout.toString(), /^forks 29 then EAGAIN$/m);
    const left = await settledHostState(before, memfdsBefore);
    assert.equal(left.descendants, before);
  });

  test('busybox ulimit matches native', async () => {
    const argv = [BUSYBOX, 'sh', '-c', LIMITS_SCRIPT];
    const native = runNative(argv, dir, []);
    assert.is(native.status, 0);
    const run = await runInSandbox(argv, dir, [], { platform });
    assert.is(run.status, 0, run.stderr);
    assert.is(run.stdout.toString(), native.stdout.toString());
  });

  test.run();
}

const cleanup = suite('after the credential tests');
cleanup('remove the program', () => {
  fs.rmSync(dir, { recursive: true, force: true });
  assert.not.ok(fs.existsSync(dir));
});
cleanup.run();
