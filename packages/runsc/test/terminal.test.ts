/**
 * `runsc do` on a terminal. An interactive shell in the sandbox behaves as on Linux. The keys a
 * terminal turns into signals (Ctrl-C, Ctrl-Z) and window size changes reach the sandbox's
 * foreground job. runsc itself does not stop on SIGTSTP, and the terminal's settings are restored
 * when runsc ends. Each case runs on a fresh pseudo-terminal with runsc as the session leader.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { listPlatforms } from '@tsvisor/platform-api';

const RUNSC = path.join(__dirname, '..', 'bin', 'runsc.js');
const PTY_RUN = path.join(__dirname, '..', '..', 'sentry', 'test', 'fixtures', 'terminal', 'pty-run.py');
const BUSYBOX = '/usr/bin/busybox';
const SHELL = [BUSYBOX, 'sh', '-i'];
const ENV = { PATH: '/usr/bin:/bin', LC_ALL: 'C' };

type Step = { expect: string } | { send: string } | { sleep: number } | { resize: [number, number] } | { kill: string };

interface TerminalRun {
  readonly output: string;
  readonly status: number;
  readonly termiosBefore: unknown[];
  readonly termiosAfter: unknown[];
  readonly failed: unknown;
}

/** Runs `argv` from "/" on a new pseudo-terminal with pty-run.py, playing `steps`. */
function onTerminal(argv: readonly string[], steps: readonly Step[]): TerminalRun {
  const run = spawnSync('python3', [PTY_RUN, JSON.stringify(steps), '--', ...argv], {
    cwd: '/',
    encoding: 'latin1',
    env: { ...process.env, ...ENV },
    maxBuffer: 16 * 1024 * 1024,
  });
  if (run.status !== 0) throw new Error(`pty-run.py failed with status ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout) as TerminalRun;
}

function runsc(platform: string | undefined, argv: readonly string[]): string[] {
  const flags = platform === undefined ? [] : [`--platform=${platform}`];
  return [process.execPath, RUNSC, 'do', ...flags, '--', ...argv];
}

/** Runs `argv` natively and under runsc, asserts the same output and exit status, and returns runsc's run. */
function compareWithNative(platform: string | undefined, argv: readonly string[], steps: readonly Step[]): TerminalRun {
  const native = onTerminal(argv, steps);
  const sandboxed = onTerminal(runsc(platform, argv), steps);
  const label = `${argv.join(' ')} under runsc${platform === undefined ? '' : ` on ${platform}`}`;
  assert.is(native.failed, null, `native run of ${argv.join(' ')} missed a step; output: ${JSON.stringify(native.output)}`);
  assert.is(sandboxed.failed, null, `${label} missed a step; output: ${JSON.stringify(sandboxed.output)}`);
  assert.is(sandboxed.output, native.output, `output of ${label}`);
  assert.is(sandboxed.status, native.status, `exit status of ${label}`);
  assert.equal(sandboxed.termiosAfter, sandboxed.termiosBefore, `terminal settings after ${label}`);
  return sandboxed;
}

const test = suite('runsc do on a terminal');

test('interactive shell exits with its status', () => {
  const run = compareWithNative(undefined, SHELL, [
    { expect: '# ' },
    { send: 'echo hi\r' },
    { expect: '# ' },
    { send: 'exit 3\r' },
  ]);
  assert.match(run.output, /\r\nhi\r\n/);
  assert.not.match(run.output, /can't set tty process group/);
  assert.is(run.status, 3);
});

test('SIGTSTP leaves runsc running', () => {
  const run = onTerminal(runsc(undefined, SHELL), [
    { expect: '# ' },
    { kill: 'SIGTSTP' },
    { send: 'echo alive\r' },
    { expect: 'alive' },
    { expect: '# ' },
    { send: 'exit 4\r' },
  ]);
  assert.is(run.failed, null, JSON.stringify(run.output));
  assert.is(run.status, 4);
});

test('window size change reaches the program', () => {
  const argv = [BUSYBOX, 'sh', '-c', 'trap "echo winch; stty size; exit 5" WINCH; echo ready; while :; do sleep 0.1; done'];
  const run = compareWithNative(undefined, argv, [{ expect: 'ready' }, { resize: [40, 100] }, { expect: 'winch' }]);
  assert.match(run.output, /winch\r\n40 100\r\n/);
  assert.is(run.status, 5);
});

test('SIGTERM in raw mode restores settings', () => {
  const argv = [BUSYBOX, 'sh', '-c', 'stty raw -echo; echo ready; sleep 30'];
  const run = onTerminal(runsc(undefined, argv), [{ expect: 'ready' }, { kill: 'SIGTERM' }]);
  assert.is(run.failed, null, JSON.stringify(run.output));
  assert.is(run.status, 128 + 15);
  assert.equal(run.termiosAfter, run.termiosBefore);
});

test.run();

// Ctrl-C and Ctrl-Z make the host terminal signal its whole foreground process group, runsc and
// the platform's helper processes included, so these run once per platform.
const platforms = listPlatforms().filter((platform) => platform.available).map((platform) => platform.name);
for (const platform of platforms) {
  const run = suite(`terminal keys under runsc on ${platform}`);

  run('Ctrl-C ends the foreground job only', () => {
    const result = compareWithNative(platform, SHELL, [
      { expect: '# ' },
      { send: 'sleep 5\r' },
      { sleep: 1 },
      { send: '\x03' },
      { expect: '# ' },
      { send: 'echo status=$?\r' },
      { expect: 'status=' },
      { expect: '# ' },
      { send: 'exit\r' },
    ]);
    assert.match(result.output, /status=130/);
    assert.is(result.status, 0);
  });

  run('Ctrl-Z stops a job for bg and fg', () => {
    const result = compareWithNative(platform, SHELL, [
      { expect: '# ' },
      { send: 'sleep 30\r' },
      { sleep: 1 },
      { send: '\x1a' },
      { expect: 'Stopped' },
      { expect: '# ' },
      { send: 'bg\r' },
      { expect: '# ' },
      { send: 'jobs\r' },
      { expect: 'Running' },
      { expect: '# ' },
      { send: 'fg\r' },
      { expect: 'sleep 30' },
      { sleep: 1 },
      { send: '\x03' },
      { expect: '# ' },
      { send: 'exit\r' },
    ]);
    assert.match(result.output, /\[1\]\+ +Stopped +sleep 30/);
    assert.match(result.output, /\[1\]\+ +Running +sleep 30/);
  });

  run.run();
}

