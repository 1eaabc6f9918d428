/**
 * End to end: programs that fork, exec, wait, use threads, pipes and signals give the same stdout
 * and exit status in the sandbox as natively. The programs are busybox pipelines, a busybox sh
 * script, a static pthread C program, and a C program that checks the task system calls' results
 * and errors. Afterwards no host process and no memfd of a sandbox may be left.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SandboxController } from '../src/index.js';
import { assertNothingLeft, compareWithNative, recordHostBaseline, runInSandbox, testPlatforms } from './helpers/host.js';

const BUSYBOX = '/usr/bin/busybox';
const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C', 'TZ=UTC', 'HOME=/'];
const FIXTURES = path.join(__dirname, 'fixtures');

/** Builds the C programs and the 200-file tree; returns the directory. */
function prepare(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-processes-'));
  for (const program of ['tasks-program', 'tasks-syscalls', 'spinning-thread']) {
    execFileSync('gcc', ['-static', '-pthread', '-O2', '-o', path.join(dir, program), path.join(FIXTURES, `${program}.c`)]);
  }

  const tree = path.join(dir, 'tree');
  for (let i = 0; i < 200; i++) {
    const sub = path.join(tree, `d${i % 7}`, `e${i % 3}`);
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `file-${i}.txt`), `file ${i}\n`.repeat(i + 1));
  }

  // The sandbox hides the host's /tmp, where a checkout may live, so the script is copied here.
  fs.copyFileSync(path.join(FIXTURES, 'tasks-script.sh'), path.join(dir, 'tasks-script.sh'));

  const script = path.join(dir, 'hashbang.sh');
  fs.writeFileSync(script, `#!${BUSYBOX} sh\necho "script $0 with $# arguments: $*"\nexit 4\n`, { mode: 0o755 });
  return dir;
}

const dir = prepare();
const baseline = recordHostBaseline();
const platforms = testPlatforms();

const cases: Array<[string, string[]]> = [
  ['echo a | wc -c', [BUSYBOX, 'sh', '-c', `echo a | ${BUSYBOX} wc -c`]],
  ['find | sort | xargs md5sum | tail', [BUSYBOX, 'sh', '-c', 'busybox find tree -type f | busybox sort | busybox xargs busybox md5sum | busybox tail -n 20']],
  ['sh script with traps and jobs', [BUSYBOX, 'sh', path.join(dir, 'tasks-script.sh')]],
  ['pthread program', [path.join(dir, 'tasks-program')]],
  ['wait, vfork, exec, process groups and futexes', [path.join(dir, 'tasks-syscalls')]],
  ['spinning thread stalls nothing', [path.join(dir, 'spinning-thread')]],
  ['subshells, exit codes and pids', [BUSYBOX, 'sh', '-c', '(exit 7); echo "status $?"; busybox sh -c "exit 9"; echo "status $?"; busybox false || exit 6']],
  ['#! script run by exec', [BUSYBOX, 'sh', '-c', './hashbang.sh one two; echo "script status $?"']],
];

for (const platform of platforms) {
  const test = suite(`processes on ${platform}`);
  for (const [name, argv] of cases) test(name, async () => {
    await compareWithNative(platform, argv, dir, ENV);
  });

  test('pipeline output is complete', async () => {
    const stdout = await compareWithNative(platform, [BUSYBOX, 'sh', '-c', 'busybox find tree -type f | busybox wc -l'], dir, ENV);
    assert.is(stdout.toString().trim(), '200');
  });

  test('controller signals the foreground group', async () => {
    const controller = new SandboxController();
    const running = runInSandbox([BUSYBOX, 'sh', '-c', 'busybox sleep 100; echo not reached'], dir, ENV, { platform, controller });
    await new Promise((resolve) => setTimeout(resolve, 300));
    controller.signalForeground(15);
    const sandboxed = await running;
    assert.is(sandboxed.status, 128 + 15);
    assert.is(sandboxed.stdout.toString(), '');
  });

  test('controller rejects invalid signals', () => {
    const controller = new SandboxController();
    assert.throws(() => controller.signalForeground(0), /invalid signal 0/);
    assert.throws(() => controller.signalForeground(65), /invalid signal 65/);
  });

  test('init is pid 1 without a parent', async () => {
    // The trailing `true` keeps the shell from replacing itself with its last command.
    const sandboxed = await runInSandbox([BUSYBOX, 'sh', '-c', 'echo "$$ $PPID"; busybox sh -c \'echo "$$ $PPID"\'; true'], dir, ENV, { platform });
    assert.is(sandboxed.stdout.toString(), '1 0\n2 1\n');
  });

  test.run();
}

const cleanup = suite('after the process tests');

cleanup('at least one platform ran', () => {
  assert.ok(platforms.length > 0, 'no platform that runs several tasks is available');
});

cleanup('no host process or memfd is left', async () => {
  await assertNothingLeft(baseline);
});

cleanup.after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

cleanup.run();
