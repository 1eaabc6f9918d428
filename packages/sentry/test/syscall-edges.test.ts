/**
 * System call results at the edges of buffers and limits, compared with a native run of the same
 * static C program on every platform: stderr lines (one result each) and the bytes the program
 * wrote into its stdout file.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runSandbox } from '../src/index.js';
import { testPlatforms } from './helpers/host.js';

interface Outcome {
  readonly results: string;
  readonly written: Buffer;
  readonly status: number | null;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-edges-'));
const program = path.join(dir, 'syscall-edges');
execFileSync('gcc', ['-static', '-O1', '-o', program, path.join(__dirname, 'fixtures', 'syscall-edges.c')]);

/** Runs `start` with stdout on a fresh read-write file and stderr on another, and collects both. */
async function collect(start: (stdout: number, stderr: number) => Promise<number | null> | number | null): Promise<Outcome> {
  const stdoutPath = path.join(dir, 'stdout');
  const stderrPath = path.join(dir, 'stderr');
  const stdout = fs.openSync(stdoutPath, 'w+');
  const stderr = fs.openSync(stderrPath, 'w');
  try {
    const status = await start(stdout, stderr);
    return { results: fs.readFileSync(stderrPath, 'utf8'), written: fs.readFileSync(stdoutPath), status };
  } finally {
    fs.closeSync(stdout);
    fs.closeSync(stderr);
  }
}

const test = suite('system call edge cases');

let native: Outcome;

test.before(async () => {
  native = await collect((stdout, stderr) => spawnSync(program, [], { stdio: ['ignore', stdout, stderr] }).status);
});

test.after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

test('native run reports every case', () => {
  assert.is(native.status, 0);
  assert.match(native.results, 'file write partial = 6\n');
  assert.match(native.results, 'mmap dir = -1 ENODEV\n');
});

for (const platform of testPlatforms()) {
  test(`${platform}: results match native`, async () => {
    const sandboxed = await collect(async (stdout, stderr) => (await runSandbox({ argv: [program], platform, stdio: [0, stdout, stderr] })).status);
    assert.is(sandboxed.results, native.results);
    assert.equal(sandboxed.written, native.written, 'partial writes store the same bytes');
    assert.is(sandboxed.status, native.status);
  });
}

test.run();
