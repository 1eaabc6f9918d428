/**
 * poll, ppoll, select and pselect6 end to end: a static C program (test/fixtures/poll/poll.c) runs
 * natively and in the sandbox on every platform, with stdin on a FIFO that contains one line and whose
 * writer has closed, and must print the same lines. A busybox shell loop that reads a pipe line by
 * line, which needs poll, must print what it prints natively.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runSandbox } from '../src/index.js';
import { assertNothingLeft, assertSameLines, recordHostBaseline, runInSandbox, runNative, testPlatforms } from './helpers/host.js';

const BUSYBOX = '/usr/bin/busybox';
const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];
const STDIN_TEXT = 'line\n';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-poll-'));
const program = path.join(dir, 'poll');
execFileSync('gcc', ['-static', '-O1', '-o', program, path.join(__dirname, 'fixtures', 'poll', 'poll.c')]);

const baseline = recordHostBaseline();

/**
 * Opens a FIFO that contains STDIN_TEXT and has no writer left, so that it reads as data then end of
 * file and polls as POLLIN | POLLHUP, as a pipe from a finished printf does.
 */
function stdinFifo(name: string): number {
  const fifo = path.join(dir, name);
  execFileSync('mkfifo', [fifo]);
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const writer = fs.openSync(fifo, 'w');
  fs.writeSync(writer, STDIN_TEXT);
  fs.closeSync(writer);
  return reader;
}

/** Runs the C program in the sandbox with stdin on a fresh FIFO; returns stdout and the exit status. */
async function runProgram(platform: string): Promise<{ stdout: string; stderr: string; status: number }> {
  const stdin = stdinFifo(`stdin-${platform}`);
  const stdoutPath = path.join(dir, `stdout-${platform}`);
  const stderrPath = path.join(dir, `stderr-${platform}`);
  const stdout = fs.openSync(stdoutPath, 'w+');
  const stderr = fs.openSync(stderrPath, 'w+');
  try {
    const result = await runSandbox({ argv: [program], env: ENV, cwd: dir, platform, stdio: [stdin, stdout, stderr] });
    return { stdout: fs.readFileSync(stdoutPath, 'utf8'), stderr: fs.readFileSync(stderrPath, 'utf8'), status: result.status };
  } finally {
    for (const fd of [stdin, stdout, stderr]) fs.closeSync(fd);
  }
}

const native = spawnSync(program, [], { cwd: dir, input: STDIN_TEXT, encoding: 'utf8', timeout: 30_000 });

const nativeSuite = suite('poll program natively');
nativeSuite('reports every case', () => {
  assert.is(native.status, 0);
  assert.match(native.stdout, 'poll woken by a child\'s write: 1\n');
  assert.match(native.stdout, 'stdin readable=1\n');
  assert.match(native.stdout, 'ppoll with SIGALRM unblocked: -1 EINTR\n');
});
nativeSuite.run();

const SHELL_LOOP = `printf "a\\nb\\n" | while read l; do echo "got $l"; done`;

for (const platform of testPlatforms()) {
  const test = suite(`poll on ${platform}`);

  test('C program matches native', async () => {
    const sandboxed = await runProgram(platform);
    assertSameLines(sandboxed, native, platform);
  });

  test('busybox while read loop', async () => {
    const argv = [BUSYBOX, 'sh', '-c', SHELL_LOOP];
    const expected = runNative(argv, dir, ENV);
    const sandboxed = await runInSandbox(argv, dir, ENV, { platform });
    assert.is(expected.stdout.toString(), 'got a\ngot b\n');
    assert.is(sandboxed.stdout.toString(), expected.stdout.toString(), `stdout; sandbox stderr: ${sandboxed.stderr}`);
    assert.is(sandboxed.status, expected.status);
  });

  test.run();
}

const cleanup = suite('after the poll programs');
cleanup('no process or memfd is left', async () => {
  await assertNothingLeft(baseline);
  fs.rmSync(dir, { recursive: true, force: true });
});
cleanup.run();
