import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const RUNSC = path.join(__dirname, '..', 'bin', 'runsc.js');
const BUSYBOX = '/usr/bin/busybox';

function runsc(...args: string[]) {
  const result = spawnSync(process.execPath, [RUNSC, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function native(...args: string[]) {
  const result = spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout };
}

function assertOneLineError(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split('\n');
  assert.is(lines.length, 1, `expected one line, got:\n${stderr}`);
  assert.match(lines[0], pattern);
  assert.not.match(stderr, /\n\s+at /, 'no stack trace');
}

test('do runs busybox ls -l like natively', () => {
  const inside = runsc('do', '--', BUSYBOX, 'ls', '-l', '/usr');
  const outside = native(BUSYBOX, 'ls', '-l', '/usr');
  assert.is(inside.stderr, '');
  assert.is(inside.stdout, outside.stdout);
  assert.is(inside.status, 0);
});

test('do lists the same root entries as the host', () => {
  // The sandbox has its own /proc, so only the names are compared here.
  const inside = runsc('do', '--', BUSYBOX, 'ls', '-1', '/');
  const outside = native(BUSYBOX, 'ls', '-1', '/');
  assert.is(inside.stdout, outside.stdout);
  assert.is(inside.status, 0);
});

test('do returns the program exit status', () => {
  assert.is(runsc('do', '--', BUSYBOX, 'true').status, 0);
  assert.is(runsc('do', '--', BUSYBOX, 'false').status, 1);
  assert.is(runsc('do', BUSYBOX, 'sh', '-c', 'exit 42').status, native(BUSYBOX, 'sh', '-c', 'exit 42').status);
});

test('flags before the command are accepted', () => {
  const result = runsc('--platform=ptrace', 'do', BUSYBOX, 'echo', 'hello');
  assert.is(result.stdout, 'hello\n');
  assert.is(result.status, 0);
});

test('env without a name is rejected', () => {
  for (const assignment of ['=x', '', 'NAME']) {
    const result = runsc('do', `--env=${assignment}`, '--', BUSYBOX, 'true');
    assert.is(result.status, 2, assignment);
    assertOneLineError(result.stderr, /^runsc: --env needs NAME=VALUE, got "/);
  }
});

test('env assignment reaches the program', () => {
  const result = runsc('do', '--env=TSVISOR_TEST_VALUE=a=b', '--', BUSYBOX, 'sh', '-c', 'echo "$TSVISOR_TEST_VALUE"');
  assert.is(result.stdout, 'a=b\n');
  assert.is(result.status, 0);
});

/** Runs `argv` through coreutils env, which exits 127 when it is not found and 126 when it cannot be executed. */
function nativeExec(...argv: string[]) {
  const result = spawnSync('/usr/bin/env', ['--', ...argv], { encoding: 'utf8' });
  return { status: result.status, stderr: result.stderr };
}

test('missing program exits 127', () => {
  const result = runsc('do', '--', '/nonexistent/program');
  assert.is(result.status, 127);
  assert.is(result.status, nativeExec('/nonexistent/program').status);
  assertOneLineError(result.stderr, /^runsc: .*\/nonexistent\/program.*no such file or directory/i);
});

test('program not in PATH exits 127', () => {
  const result = runsc('do', '--', 'tsvisor-no-such-program');
  assert.is(result.status, 127);
  assert.is(result.status, nativeExec('tsvisor-no-such-program').status);
  assertOneLineError(result.stderr, /^runsc: tsvisor-no-such-program: command not found in PATH$/);
});

test('empty program name exits 127', () => {
  const result = runsc('do', '--', '');
  assert.is(result.status, 127);
  assert.is(result.status, nativeExec('').status);
  assertOneLineError(result.stderr, /^runsc: the program name is empty; name a program, as in runsc do -- \/bin\/ls$/);
});

test('program that cannot be executed exits 126', () => {
  // Not under the host's /tmp, which the sandbox's own tmpfs hides.
  const dir = fs.mkdtempSync(path.join('/var/tmp', 'runsc-test-'));
  const text = path.join(dir, 'notes.txt');
  fs.writeFileSync(text, 'just text\n', { mode: 0o755 });
  const unreadable = path.join(dir, 'unreadable');
  fs.copyFileSync(BUSYBOX, unreadable);
  fs.chmodSync(unreadable, 0o644);
  const cases: Array<[string, RegExp]> = [
    [unreadable, /^runsc: .*unreadable: permission denied$/],
    ['/usr', /^runsc: \/usr: is a directory$/],
  ];
  try {
    for (const [program, message] of cases) {
      const result = runsc('do', '--', program);
      assert.is(result.status, 126, program);
      assert.is(result.status, nativeExec(program).status, `${program} natively`);
      assertOneLineError(result.stderr, message);
    }

    // env is no reference here: glibc's execvp runs a file without a "#!" line with /bin/sh.
    const result = runsc('do', '--', text);
    assert.is(result.status, 126, text);
    assertOneLineError(result.stderr, /^runsc: .*notes\.txt.*(not an ELF|exec format)/i);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('dynamic executable runs like natively', () => {
  const inside = runsc('do', '--', '/usr/bin/ls', '-l', '/usr');
  const outside = native('/usr/bin/ls', '-l', '/usr');
  assert.is(inside.stderr, '');
  assert.is(inside.stdout, outside.stdout);
  assert.is(inside.status, 0);
});

test('unknown platform lists installed ones', () => {
  const result = runsc('do', '--platform=nonesuch', '--', BUSYBOX, 'true');
  assert.is(result.status, 1);
  assertOneLineError(result.stderr, /^runsc: unknown platform "nonesuch"; installed: .*ptrace \(available\)/);
});

test('repeated env name keeps the last value', () => {
  const result = runsc('do', '--env=TSVISOR_TEST_VALUE=1', '--env=TSVISOR_TEST_VALUE=2', '--', BUSYBOX, 'env');
  const lines = result.stdout.split('\n').filter((line) => line.startsWith('TSVISOR_TEST_VALUE='));
  assert.equal(lines, ['TSVISOR_TEST_VALUE=2']);
  assert.is(result.status, 0);
});

test('env assignment replaces the host value', () => {
  const result = runsc('do', '--env=HOME=/sandbox-home', '--', BUSYBOX, 'env');
  const lines = result.stdout.split('\n').filter((line) => line.startsWith('HOME='));
  assert.equal(lines, ['HOME=/sandbox-home']);
  assert.is(result.status, 0);
});

test('missing program argument is a usage error', () => {
  const result = runsc('do');
  assert.is(result.status, 2);
  assertOneLineError(result.stderr, /^runsc: missing program/);
});

test('unknown command and flag are usage errors', () => {
  assertOneLineError(runsc('frobnicate').stderr, /^runsc: unknown command "frobnicate"/);
  assertOneLineError(runsc('do', '--frob', 'x').stderr, /^runsc: unknown flag --frob/);
});

test('platforms lists ptrace as available', () => {
  const result = runsc('platforms');
  assert.is(result.status, 0);
  assert.match(result.stdout, /^ptrace\s+.+\n\s+available$/m);
});

test('version prints the version', () => {
  const result = runsc('version');
  assert.is(result.status, 0);
  assert.match(result.stdout, /^runsc version \d+\.\d+\.\d+/);
});

test('--tmpfs chooses the writable mounts', () => {
  const script = 'echo kept > /scratch/f && cat /scratch/f; echo lost > /tmp/f';
  const result = runsc('do', '--tmpfs=/scratch', '--', BUSYBOX, 'sh', '-c', script);
  assert.is(result.stdout, 'kept\n');
  assert.match(result.stderr, /\/tmp\/f: Read-only file system/);
  assert.is(runsc('do', '--cwd=/', '--', BUSYBOX, 'sh', '-c', 'echo kept > /tmp/f && cat /tmp/f').stdout, 'kept\n');
  assertOneLineError(runsc('do', '--tmpfs=scratch', '--', BUSYBOX, 'true').stderr, /^runsc: cannot mount a tmpfs at "scratch"/);
});

test.run();
