/**
 * The sandbox's tmpfs at /tmp and /dev/shm. A shell script and a C program that create, write,
 * rename and remove files there must behave as they do natively in a fresh host directory. The
 * host's /tmp must stay hidden and unchanged, and the tmpfsMounts option moves or removes the mounts.
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runSandbox, SandboxError } from '../src/index.js';
import { descendants, openMemfds, runInSandbox, runNative, settledHostState, testPlatforms } from './helpers/host.js';

const BUSYBOX = '/usr/bin/busybox';
const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C', 'TZ=UTC', 'HOME=/'];
/** The sandbox's default mounts, named explicitly because the test helper leaves out one that would hide the checkout. */
const DEFAULT_MOUNTS = ['/tmp', '/dev/shm'];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-tmpfs-'));
// The sandbox hides the host's /tmp, where a checkout may live, so the script is copied here.
const SCRIPT = path.join(dir, 'script.sh');
fs.copyFileSync(path.join(__dirname, 'fixtures', 'tmpfs', 'script.sh'), SCRIPT);
const errnoCases = path.join(dir, 'errno-cases');
execFileSync('gcc', ['-static', '-O2', '-o', errnoCases, path.join(__dirname, 'fixtures', 'tmpfs', 'errno-cases.c')]);

// A file in the host's /tmp that the sandbox must not see, and names the sandbox writes that must
// not appear on the host.
const tag = crypto.randomBytes(6).toString('hex');
const hostHidden = path.join('/tmp', `tsvisor-hidden-${tag}`);
fs.writeFileSync(hostHidden, 'host only\n');
const probes = [`/tmp/tsvisor-probe-${tag}`, `/dev/shm/tsvisor-probe-${tag}`];

const memfdsBefore = openMemfds();
const descendantsBefore = descendants();
const platforms = testPlatforms();

/** Runs argv natively with a fresh host directory in place of /tmp, and in the sandbox with /tmp. */
async function compareWithNative(platform: string, argv: (scratch: string) => string[], extra: Parameters<typeof runInSandbox>[3] = {}): Promise<string> {
  const scratch = fs.mkdtempSync(path.join(dir, 'native-'));
  const native = runNative(argv(scratch), scratch, ENV);
  const sandboxed = await runInSandbox(argv('/tmp'), '/', ENV, { platform, tmpfsMounts: DEFAULT_MOUNTS, ...extra });
  const expected = native.stdout.toString().split(scratch).join('/tmp');
  const label = `${argv('/tmp').join(' ')} on ${platform}`;
  assert.is(sandboxed.status, native.status, `exit status of ${label}; sandbox stderr: ${sandboxed.stderr}`);
  assert.fixture(sandboxed.stdout.toString(), expected, `stdout of ${label}`);
  return sandboxed.stdout.toString();
}

for (const platform of platforms) {
  const test = suite(`tmpfs on ${platform}`);

  test('shell script and sort spilling', async () => {
    const calls: string[] = [];
    const out = await compareWithNative(platform, (scratch) => [BUSYBOX, 'sh', SCRIPT, scratch], { strace: (line) => calls.push(line) });
    assert.match(out, /^300000\n300000\n299999\n/m);
    const spills = calls.filter((line) => /openat\(AT_FDCWD, "\/tmp\/sort[^"]*", .*\) = \d+$/.test(line));
    assert.ok(spills.length > 0, 'sort wrote no temporary file to /tmp');
  });

  test('errno and attribute cases', async () => {
    await compareWithNative(platform, (scratch) => [errnoCases, scratch]);
  });

  test('host /tmp hidden and unchanged', async () => {
    const script = `ls -A /tmp /dev/shm; cat ${hostHidden}; echo sandboxed > ${probes[0]}; echo sandboxed > ${probes[1]}; cat ${probes.join(' ')}`;
    const result = await runInSandbox([BUSYBOX, 'sh', '-c', script], '/', ENV, { platform, tmpfsMounts: DEFAULT_MOUNTS });
    assert.is(result.stdout.toString(), '/dev/shm:\n\n/tmp:\nsandboxed\nsandboxed\n');
    assert.match(result.stderr, `'${hostHidden}': No such file or directory`);
    assert.is(fs.readFileSync(hostHidden, 'utf8'), 'host only\n');
    for (const probe of probes) assert.not.ok(fs.existsSync(probe), `${probe} appeared on the host`);
  });

  test('st_dev per mount and ".."', async () => {
    const result = await runInSandbox([BUSYBOX, 'sh', '-c', 'stat -c %d / /tmp /dev/shm; cd /tmp/..; pwd; cd /dev/shm/..; pwd; ls -di /tmp/.. /'], '/', ENV, { platform, tmpfsMounts: DEFAULT_MOUNTS });
    const lines = result.stdout.toString().split('\n');
    assert.is(new Set(lines.slice(0, 3)).size, 3, `st_dev values: ${lines.slice(0, 3).join(' ')}`);
    assert.equal(lines.slice(3, 5), ['/', '/dev']);
    assert.is(lines[5].split(/\s+/)[0], lines[6].split(/\s+/)[0], 'inode of /tmp/.. and /');
  });

  test.run();
}

const options = suite('tmpfsMounts option');

options('an empty list shows the host /tmp, read-only', async () => {
  const script = `cat ${hostHidden}; echo x > /tmp/tsvisor-probe-${tag}`;
  const result = await runInSandbox([BUSYBOX, 'sh', '-c', script], '/', ENV, { tmpfsMounts: [] });
  assert.is(result.stdout.toString(), 'host only\n');
  assert.match(result.stderr, 'Read-only file system');
  assert.not.ok(fs.existsSync(`/tmp/tsvisor-probe-${tag}`));
});

options('other mount points replace the defaults', async () => {
  const script = 'mkdir -p /scratch/a && echo kept > /scratch/a/f && cat /scratch/a/f; mv /scratch/a/f /tmp/f; touch /tmp/g';
  const result = await runInSandbox([BUSYBOX, 'sh', '-c', script], '/', ENV, { tmpfsMounts: ['/scratch'] });
  assert.is(result.stdout.toString(), 'kept\n');
  assert.match(result.stderr, /mv: can't create '\/tmp\/f': Read-only file system/);
  assert.match(result.stderr, /touch: \/tmp\/g: Read-only file system/);
});

options('a bad mount point is a one-line error', async () => {
  for (const bad of ['tmp', '/', '/tmp/', '/a/../b', '/proc']) {
    try {
      await runSandbox({ argv: [BUSYBOX, 'true'], stdio: [], tmpfsMounts: [bad] });
      assert.unreachable(`tmpfsMounts ${bad} was accepted`);
    } catch (error) {
      assert.instance(error, SandboxError);
      assert.match((error as Error).message, `cannot mount a tmpfs at "${bad}"`);
      assert.not.match((error as Error).message, '\n');
    }
  }
});

options('no stub process or memfd is left', async () => {
  assert.ok(platforms.length > 0, 'no platform is available');
  const left = await settledHostState(descendantsBefore, memfdsBefore);
  assert.equal(left.descendants, descendantsBefore, 'descendant processes left behind');
  assert.equal(left.memfds, memfdsBefore, 'memfds left open');
});

options.after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(hostHidden, { force: true });
});

options.run();
