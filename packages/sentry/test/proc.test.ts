/**
 * /proc in the sandbox: ps lists the sandbox's processes only, a C program finds its pid, parent,
 * state, threads and signal masks in /proc/self/stat and status as natively, cmdline and environ
 * match what execve received, a zombie stays listed until it is reaped, and df, /proc/mounts and
 * the system files work.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compareWithNative, runInSandbox, runNative, testPlatforms } from './helpers/host.js';

const BUSYBOX = '/usr/bin/busybox';
const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C', 'TZ=UTC', 'HOME=/'];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-proc-'));
const PROC_SELF = path.join(dir, 'proc-self');
execFileSync('gcc', ['-static', '-pthread', '-O2', '-o', PROC_SELF, path.join(__dirname, 'fixtures', 'proc-self.c')]);
const PROC_ZOMBIE = path.join(dir, 'proc-zombie');
execFileSync('gcc', ['-static', '-O2', '-o', PROC_ZOMBIE, path.join(__dirname, 'fixtures', 'proc-zombie.c')]);

const test = suite('proc');

test.after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

for (const platform of testPlatforms()) {
  test(`ps shows only the sandbox's processes on ${platform}`, async () => {
    const script = `${BUSYBOX} sleep 1 & ${BUSYBOX} ps -o pid,ppid,stat,comm; wait`;
    const result = await runInSandbox([BUSYBOX, 'sh', '-c', script], dir, ENV, { platform });
    assert.is(result.status, 0, result.stderr);
    const lines = result.stdout.toString().trimEnd().split('\n');
    assert.equal(lines[0].split(/\s+/), ['PID', 'PPID', 'STAT', 'COMMAND']);
    assert.equal(
      lines.slice(1).map((line) => line.trim().split(/\s+/)),
      [
        ['1', '0', 'S', 'busybox'],
        // busybox runs as itself, so comm is its file name; sleep may not have reached nanosleep yet.
        ['2', '1', lines[2].trim().split(/\s+/)[2], 'busybox'],
        ['3', '1', 'R', 'busybox'],
      ],
    );
    assert.match(lines[2], /^\s+2\s+1 [RS]/);

    const plain = await runInSandbox([BUSYBOX, 'sh', '-c', `${BUSYBOX} sleep 1 & ${BUSYBOX} ps; wait`], dir, ENV, { platform });
    const pids = plain.stdout.toString().trimEnd().split('\n').slice(1).map((line) => Number(line.trim().split(/\s+/)[0]));
    assert.equal(pids, [1, 2, 3]);
  });

  test(`/proc/self/stat and status match the process on ${platform}`, async () => {
    const native = runNative([PROC_SELF], dir, ENV);
    assert.is(native.stdout.toString(), 'proc checks passed\n', 'native run');
    const result = await runInSandbox([PROC_SELF], dir, ENV, { platform });
    assert.is(result.stdout.toString(), 'proc checks passed\n', result.stderr);
    assert.is(result.status, 0);
  });

  test(`a zombie stays listed until reaped on ${platform}`, async () => {
    const output = await compareWithNative(platform, [PROC_ZOMBIE], dir, ENV);
    assert.match(output.toString(), 'state Z');
  });

  test(`cmdline and environ match argv and envp on ${platform}`, async () => {
    const argv = [BUSYBOX, 'cat', '/proc/self/cmdline', '/proc/self/environ'];
    const result = await runInSandbox(argv, dir, ENV, { platform });
    assert.is(result.status, 0, result.stderr);
    assert.is(result.stdout.toString('latin1'), [...argv, ...ENV].map((arg) => `${arg}\0`).join(''));
    assert.is(result.stdout.toString('latin1'), runNative(argv, dir, ENV).stdout.toString('latin1'));
  });

  test(`df, /proc/mounts and the system files on ${platform}`, async () => {
    const df = await runInSandbox([BUSYBOX, 'df', '/tmp'], dir, ENV, { platform, tmpfsMounts: ['/tmp', '/dev/shm'] });
    assert.is(df.status, 0, df.stderr);
    assert.match(df.stdout.toString(), /\n\S+\s+\d+\s+\d+\s+\d+\s+\d+% \/tmp\n$/);

    const files = ['mounts', 'uptime', 'loadavg', 'meminfo', 'cpuinfo'].map((name) => `/proc/${name}`);
    const result = await runInSandbox([BUSYBOX, 'sh', '-c', files.map((file) => `echo "== ${file}"; ${BUSYBOX} cat ${file}`).join('; ')], dir, ENV, { platform });
    assert.is(result.status, 0, result.stderr);
    const sections = new Map(
      result.stdout
        .toString()
        .split('== ')
        .slice(1)
        .map((section) => [section.slice(0, section.indexOf('\n')), section.slice(section.indexOf('\n') + 1)] as const),
    );
    const mounts = sections.get('/proc/mounts')!.trimEnd().split('\n');
    assert.is(mounts[0], 'host / host ro 0 0');
    assert.ok(mounts.includes('proc /proc proc rw,nosuid,nodev,noexec 0 0'), mounts.join('\n'));
    assert.ok(mounts.some((line) => /^tmpfs \/\S+ tmpfs rw /.test(line)), mounts.join('\n'));
    assert.match(sections.get('/proc/uptime')!, /^\d+\.\d\d \d+\.\d\d\n$/);
    // The shell and the third cat (pid 4) are the only tasks, and the cat is running.
    assert.match(sections.get('/proc/loadavg')!, /^\d+\.\d\d \d+\.\d\d \d+\.\d\d [12]\/2 4\n$/);
    assert.match(sections.get('/proc/meminfo')!, /^MemTotal:\s+\d+ kB\n/);
    assert.match(sections.get('/proc/cpuinfo')!, /^processor\t: 0\n/);
  });
}

test.run();
