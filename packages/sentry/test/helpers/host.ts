/** Host-side helpers for the sentry's end-to-end tests: native runs, sandbox runs, leak census. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as assert from 'uvu/assert';
import { listPlatforms } from '@tsvisor/platform-api';
import { runSandbox, type SandboxOptions } from '../../src/index.js';

export interface RunOutput {
  readonly stdout: Buffer;
  readonly status: number;
}

const SIGNAL_NUMBERS: Record<string, number> = os.constants.signals;

// The sandbox mounts its own tmpfs over /tmp, so fixtures the tests build on the host and run in
// the sandbox must live elsewhere. Every test that imports these helpers gets its scratch
// directories (os.tmpdir()) under /var/tmp, which the sandbox sees through the host view.
process.env.TMPDIR = '/var/tmp';

/** Runs a program directly on the host. `status` is the exit code, or 128 + N for signal N. */
export function runNative(argv: readonly string[], cwd: string, env: readonly string[]): RunOutput {
  const result = spawnSync(argv[0], argv.slice(1), {
    cwd,
    env: Object.fromEntries(env.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)])),
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  const status = result.signal !== null ? 128 + SIGNAL_NUMBERS[result.signal] : (result.status ?? -1);
  return { stdout: result.stdout, status };
}

/** Runs a program in the sandbox with stdout and stderr sent to files, and returns stdout. */
/**
 * Returns the default tmpfs mounts minus any that would hide this checkout, which may itself live
 * under /tmp; tests run programs and scripts from it. Tests of the tmpfs pass their own mounts.
 */
function tmpfsKeepingCheckout(): string[] {
  const checkout = path.resolve(__dirname, '..', '..', '..', '..');
  return ['/tmp', '/dev/shm'].filter((mount) => checkout !== mount && !checkout.startsWith(`${mount}/`));
}

export async function runInSandbox(argv: readonly string[], cwd: string, env: readonly string[], extra: Partial<SandboxOptions> = {}): Promise<RunOutput & { stderr: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-run-'));
  const stdin = fs.openSync('/dev/null', 'r');
  const stdout = fs.openSync(path.join(dir, 'stdout'), 'w+');
  const stderr = fs.openSync(path.join(dir, 'stderr'), 'w+');
  try {
    const result = await runSandbox({ argv, env, cwd, stdio: [stdin, stdout, stderr], tmpfsMounts: tmpfsKeepingCheckout(), ...extra });
    return {
      stdout: fs.readFileSync(path.join(dir, 'stdout')),
      stderr: fs.readFileSync(path.join(dir, 'stderr'), 'utf8'),
      status: result.status,
    };
  } finally {
    for (const fd of [stdin, stdout, stderr]) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : Number(fields[1]);
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is the esbuild service that tsx starts on demand to compile test files. It is a
 * child of the test process that comes and goes with compilation, not something a sandbox made.
 */
function isCompilerService(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('esbuild');
  } catch {
    return false;
  }
}

/** Pids of this process's live descendants, leaving out tsx's esbuild service. */
export function descendants(): number[] {
  const parents = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = parentOf(Number(entry));
    if (parent !== undefined) parents.set(Number(entry), parent);
  }
  const found: number[] = [];
  for (const pid of parents.keys()) {
    for (let cursor = parents.get(pid); cursor !== undefined && cursor > 1; cursor = parents.get(cursor)) {
      if (cursor === process.pid) {
        if (!isCompilerService(pid)) found.push(pid);
        break;
      }
    }
  }
  return found.sort((a, b) => a - b);
}

/** Descriptors of this process and its descendants that refer to a memfd, as "pid:fd -> target". */
export function openMemfds(): string[] {
  const found: string[] = [];
  for (const pid of [process.pid, ...descendants()]) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith('/memfd:')) found.push(`${pid}:${fd} -> ${target}`);
      } catch {
        // The descriptor was closed while we looked.
      }
    }
  }
  return found;
}

/** Writes a file of `bytes` bytes of numbers, one per line, from a fixed pseudo-random sequence. */
export function writeNumbers(file: string, bytes: number): void {
  const lines: string[] = [];
  let size = 0;
  let state = 12345;
  while (size < bytes) {
    state = (state * 1103515245 + 12345) % 2147483648;
    const line = String(state % 1000000 - 500000);
    lines.push(line);
    size += line.length + 1;
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

/**
 * Platforms a test that compares every platform should use: the one named by TSVISOR_PLATFORM
 * when the suite is run once per platform, otherwise every platform available here.
 */
export function testPlatforms(): string[] {
  const chosen = process.env.TSVISOR_PLATFORM;
  if (chosen) return [chosen];
  return listPlatforms().filter((platform) => platform.available).map((platform) => platform.name);
}

/**
 * Waits until no descendant process and no open memfd exists beyond those present before the
 * sandbox ran, or until `timeoutMs` passes. Returns the earlier lists plus whatever is still extra,
 * so a test compares the result with the earlier lists. Reaping a stub is asynchronous on some
 * platforms, so a loaded machine needs more than one look; an earlier process that has since
 * exited on its own is not a leak and is ignored.
 */
export async function settledHostState(
  descendantsBefore: number[],
  memfdsBefore: string[],
  timeoutMs = 5000,
): Promise<{ descendants: number[]; memfds: string[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const extraProcesses = descendants().filter((pid) => !descendantsBefore.includes(pid));
    const extraMemfds = openMemfds().filter((memfd) => !memfdsBefore.includes(memfd));
    const settled = extraProcesses.length === 0 && extraMemfds.length === 0;
    if (settled || Date.now() >= deadline) {
      return {
        descendants: [...descendantsBefore, ...extraProcesses],
        memfds: [...memfdsBefore, ...extraMemfds],
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Runs `argv` natively and in the sandbox on `platform`, both in `cwd` with `env`, asserts that the
 * exit status and stdout are the same, and returns the sandbox's stdout. stdout is compared byte
 * for byte (latin1 maps each byte to one character) so that a mismatch shows as a diff.
 */
export async function compareWithNative(platform: string, argv: readonly string[], cwd: string, env: readonly string[]): Promise<Buffer> {
  const native = runNative(argv, cwd, env);
  const sandboxed = await runInSandbox(argv, cwd, env, { platform });
  const label = `${argv.join(' ')} on ${platform}`;
  assert.is(sandboxed.status, native.status, `exit status of ${label}; sandbox stderr: ${sandboxed.stderr}`);
  assert.is(sandboxed.stdout.toString('latin1'), native.stdout.toString('latin1'), `stdout of ${label}; sandbox stderr: ${sandboxed.stderr}`);
  return sandboxed.stdout;
}

/**
 * Asserts that a sandbox run printed the native run's stdout and ended with its status. stdout is
 * compared line by line so that a failure names the first check of a test program that differs.
 */
export function assertSameLines(
  sandboxed: { stdout: Buffer | string; stderr: string; status: number },
  native: { stdout: Buffer | string; status: number | null },
  platform: string,
): void {
  const nativeLines = native.stdout.toString().split('\n');
  const sandboxLines = sandboxed.stdout.toString().split('\n');
  for (let i = 0; i < nativeLines.length; i++) {
    assert.is(sandboxLines[i], nativeLines[i], `line ${i + 1} on ${platform}; sandbox stderr: ${sandboxed.stderr}`);
  }
  assert.is(sandboxLines.length, nativeLines.length, 'line count');
  assert.is(sandboxed.status, native.status, 'exit status');
}

/** Descendant processes and open memfds before a suite's sandboxes run, for assertNothingLeft. */
export interface HostBaseline {
  readonly descendants: number[];
  readonly memfds: string[];
}

export function recordHostBaseline(): HostBaseline {
  return { memfds: openMemfds(), descendants: descendants() };
}

/** Asserts that no descendant process and no memfd is left beyond the baseline, waiting for stubs to be reaped. */
export async function assertNothingLeft(baseline: HostBaseline): Promise<void> {
  const left = await settledHostState(baseline.descendants, baseline.memfds);
  assert.equal(left.descendants, baseline.descendants, 'descendant processes left behind');
  assert.equal(left.memfds, baseline.memfds, 'memfds left open');
}
