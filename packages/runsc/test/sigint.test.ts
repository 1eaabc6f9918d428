/**
 * Ctrl-C on `runsc do`: SIGINT sent to runsc reaches the sandbox's foreground process group, the
 * program dies of it, runsc exits with 130 (128 + SIGINT), and no process of the sandbox is left
 * on the host. Checked with a program blocked in a system call and with one spinning in user code.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const RUNSC = path.join(__dirname, '..', 'bin', 'runsc.js');
const BUSYBOX = '/usr/bin/busybox';
const SPIN_SOURCE = path.join(__dirname, '..', '..', 'sentry', 'test', 'fixtures', 'spin.c');

/** How long to wait for runsc to exit after SIGINT before the test kills it and fails. */
const EXIT_TIMEOUT_MS = 10_000;

// Not under the host's /tmp, which the sandbox's own tmpfs hides.
const dir = fs.mkdtempSync(path.join('/var/tmp', 'runsc-sigint-'));
const spin = path.join(dir, 'spin');
execFileSync('gcc', ['-static', '-O1', '-o', spin, SPIN_SOURCE]);
const waitForSigint = path.join(dir, 'wait-for-sigint');
execFileSync('gcc', ['-static', '-O1', '-o', waitForSigint, path.join(__dirname, 'fixtures', 'wait-for-sigint.c')]);

function parentOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Pids of the live processes below `root`. */
function descendantsOf(root: number): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    for (let cursor = parentOf(Number(entry)); cursor !== undefined && cursor > 1; cursor = parentOf(cursor)) {
      if (cursor === root) {
        found.push(Number(entry));
        break;
      }
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

interface Interrupted {
  readonly status: number | null;
  readonly killedByTest: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly sandboxProcesses: number[];
}

/** Starts `runsc do -- argv`, sends SIGINT once the sandbox runs, and waits for runsc to exit. */
async function interrupt(argv: string[]): Promise<Interrupted> {
  const child = spawn(process.execPath, [RUNSC, 'do', '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  // The platform's stub processes appear once the program runs; give it a moment to get going.
  let sandboxProcesses: number[] = [];
  for (let attempt = 0; attempt < 100 && sandboxProcesses.length === 0; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    sandboxProcesses = descendantsOf(child.pid!);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  sandboxProcesses = descendantsOf(child.pid!);
  child.kill('SIGINT');

  let killedByTest = false;
  const timer = setTimeout(() => {
    killedByTest = true;
    child.kill('SIGKILL');
  }, EXIT_TIMEOUT_MS);
  const status = await exited;
  clearTimeout(timer);
  return { status, killedByTest, stdout, stderr, sandboxProcesses };
}

test('SIGINT ends busybox sleep with 130', async () => {
  const result = await interrupt([BUSYBOX, 'sleep', '100']);
  assert.not.ok(result.killedByTest, 'runsc did not exit after SIGINT');
  assert.is(result.status, 130, `stderr: ${result.stderr}`);
  assert.is(result.stderr, '');
});

test('SIGINT ends a spinning program with 130', async () => {
  const result = await interrupt([spin]);
  assert.not.ok(result.killedByTest, 'runsc did not exit after SIGINT');
  assert.is(result.status, 130, `stderr: ${result.stderr}`);
});

test('program blocked without a timer waits for SIGINT', async () => {
  for (const mode of ['pause', 'read']) {
    const result = await interrupt([waitForSigint, mode]);
    assert.not.ok(result.killedByTest, `runsc did not exit after SIGINT (${mode})`);
    assert.is(result.stdout, `${mode} returned -1: Interrupted system call\n`, `stderr: ${result.stderr}`);
    assert.is(result.status, 6, mode);
  }
});

test('no sandbox process outlives runsc', async () => {
  const result = await interrupt([BUSYBOX, 'sh', '-c', `${BUSYBOX} sleep 100 & ${BUSYBOX} sleep 100; true`]);
  assert.ok(result.sandboxProcesses.length > 0, 'no sandbox process was seen while the program ran');
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(result.sandboxProcesses.filter(alive), [], 'sandbox processes left on the host');
  assert.is(result.status, 130);
});

test.after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
