/**
 * The sandbox's controlling terminal. Each case runs a program on a fresh pseudo-terminal, as a
 * session leader whose stdio is the terminal, once on Linux and once in a sandbox, types a
 * script of input, and compares the output and exit status. After the sandbox the terminal's
 * settings must be what they were before, and the sandbox must leave no descriptor or process.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { recordHostBaseline, assertNothingLeft, testPlatforms } from './helpers/host.js';

const here = __dirname;
const fixtures = path.join(here, 'fixtures', 'terminal');
const PTY_RUN = path.join(fixtures, 'pty-run.py');
const RUN_ON_TERMINAL = path.join(fixtures, 'run-on-terminal.mts');
const BUSYBOX = '/usr/bin/busybox';
const ENV = { PATH: '/usr/bin:/bin', LC_ALL: 'C' };

type Step = { expect: string } | { send: string } | { sleep: number };

interface TerminalRun {
  readonly output: string;
  readonly status: number;
  readonly termiosBefore: unknown[];
  readonly termiosAfter: unknown[];
  readonly failed: unknown;
}

/**
 * Runs `argv` on a new pseudo-terminal with pty-run.py, playing `steps`, in `cwd`. The default
 * is this directory, where Node finds tsx.
 */
function onTerminal(argv: readonly string[], steps: readonly Step[], cwd = here): TerminalRun {
  const run = spawnSync('python3', [PTY_RUN, JSON.stringify(steps), '--', ...argv], {
    cwd,
    encoding: 'latin1',
    env: { ...process.env, ...ENV },
    maxBuffer: 16 * 1024 * 1024,
  });
  if (run.status !== 0) throw new Error(`pty-run.py failed with status ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout) as TerminalRun;
}

const LEFTOVER = /\r\nleftover descriptors: (-?\d+)\r\n$/;

/**
 * Runs `argv` on Linux and in a sandbox on `platform`, both from "/", and asserts the same exit
 * status and output, that the sandbox left no descriptor open, and that the terminal's settings
 * are back to what they were. Returns the sandbox's run.
 */
function compareOnTerminal(platform: string, argv: readonly string[], steps: readonly Step[]): TerminalRun {
  // The sandbox starts its program in "/", so the native run does too: the shell's prompt shows it.
  const native = onTerminal(argv, steps, '/');
  const sandboxed = onTerminal([process.execPath, '--import', 'tsx', RUN_ON_TERMINAL, platform, ...argv], steps);
  const label = `${argv.join(' ')} on ${platform}`;
  assert.is(native.failed, null, `native run of ${argv.join(' ')} missed a step; output: ${JSON.stringify(native.output)}`);
  assert.is(sandboxed.failed, null, `${label} missed a step; output: ${JSON.stringify(sandboxed.output)}`);

  const leftover = LEFTOVER.exec(sandboxed.output);
  assert.ok(leftover, `${label} did not report its descriptors; output: ${JSON.stringify(sandboxed.output)}`);
  assert.is(Number(leftover[1]), 0, `descriptors left open by ${label}`);
  assert.is(sandboxed.output.slice(0, leftover.index), native.output, `output of ${label}`);
  assert.is(sandboxed.status, native.status, `exit status of ${label}`);
  assert.equal(sandboxed.termiosAfter, sandboxed.termiosBefore, `terminal settings after ${label}`);
  return sandboxed;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-terminal-'));
const jobControl = path.join(dir, 'job-control');
execFileSync('gcc', ['-O1', '-o', jobControl, path.join(fixtures, 'job-control.c')]);
const ioctls = path.join(dir, 'ioctls');
execFileSync('gcc', ['-O1', '-o', ioctls, path.join(fixtures, 'ioctls.c')]);

const SHELL = [BUSYBOX, 'sh', '-i'];

for (const platform of testPlatforms()) {
  const test = suite(`terminal on ${platform}`);
  const baseline = recordHostBaseline();

  test('interactive shell runs commands', () => {
    const run = compareOnTerminal(platform, SHELL, [
      { expect: '# ' },
      { send: 'echo hi\r' },
      { expect: '# ' },
      { send: 'exit 3\r' },
    ]);
    assert.match(run.output, /\r\nhi\r\n/);
    assert.is(run.status, 3);
  });

  test('background job listed and killed', () => {
    const run = compareOnTerminal(platform, SHELL, [
      { expect: '# ' },
      { send: 'sleep 30 &\r' },
      { expect: '# ' },
      { send: 'jobs\r' },
      { expect: '# ' },
      { send: 'kill %1\r' },
      { expect: '# ' },
      { send: 'jobs\r' },
      { expect: 'Terminated' },
      { expect: '# ' },
      { send: 'exit\r' },
    ]);
    assert.match(run.output, /\[1\]\+ +Running +sleep 30/);
    assert.match(run.output, /\[1\]\+ +Terminated +sleep 30/);
  });

  test('stty reads and changes settings', () => {
    const run = compareOnTerminal(platform, SHELL, [
      { expect: '# ' },
      { send: 'stty -a\r' },
      { expect: '# ' },
      { send: 'stty raw -echo; stty sane; echo status=$?\r' },
      { expect: 'status=' },
      { expect: '# ' },
      { send: 'stty -a\r' },
      { expect: '# ' },
      { send: 'exit\r' },
    ]);
    assert.match(run.output, /isig icanon iexten echo/);
    assert.match(run.output, /status=0/);
  });

  test('job control signals and errors', () => {
    const run = compareOnTerminal(platform, [jobControl], []);
    assert.match(run.output, /tcsetpgrp from the background: stopped by TTOU/);
    assert.match(run.output, /read from the background: stopped by TTIN/);
    assert.match(run.output, /read ignoring SIGTTIN: exited 5\r\n/);
    assert.match(run.output, /write with TOSTOP: stopped by TTOU/);
    assert.match(run.output, /new session: exited 0/);
    assert.match(run.output, /tcsetpgrp to another session: EPERM/);
    assert.match(run.output, /read from an orphaned group: EIO/);
    assert.match(run.output, /tcsetpgrp from an orphaned group: ENOTTY/);
    assert.is(run.status, 0);
  });

  test('termio, flush, flow and window size', () => {
    const run = compareOnTerminal(platform, [ioctls], []);
    assert.match(run.output, /TCSETAW: ok, echo off 1/);
    assert.match(run.output, /tcflush invalid: EINVAL/);
    assert.match(run.output, /TIOCSWINSZ: ok, 33x77, SIGWINCH 1/);
    assert.match(run.output, /TIOCSWINSZ same size: ok, SIGWINCH 1/);
    assert.is(run.status, 0);
  });

  test('raw mode undone after a kill', () => {
    const argv = [BUSYBOX, 'sh', '-c', 'stty raw -echo; stty -a; kill -9 $$'];
    const run = onTerminal([process.execPath, '--import', 'tsx', RUN_ON_TERMINAL, platform, ...argv], []);
    assert.is(run.failed, null, JSON.stringify(run.output));
    assert.match(run.output, /-icanon/);
    assert.match(run.output, /-echo /);
    assert.is(run.status, 128 + 9);
    assert.equal(run.termiosAfter, run.termiosBefore);
  });

  test('no process left behind', async () => {
    await assertNothingLeft(baseline);
  });

  test.run();
}

const cleanup = suite('after the terminal tests');
cleanup('remove the programs', () => {
  fs.rmSync(dir, { recursive: true, force: true });
  assert.not.ok(fs.existsSync(dir));
});
cleanup.run();
