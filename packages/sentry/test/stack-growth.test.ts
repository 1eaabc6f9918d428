/**
 * The main stack grows down to RLIMIT_STACK as it was at execve, and execve places the mmap area
 * below a gap derived from that limit, as Linux does on x86-64. A deep recursion that needs about
 * 12 MB of stack runs under `ulimit -s 65536` and dies of SIGSEGV under the default 8 MB, both as
 * natively.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compareWithNative, runInSandbox, runNative, testPlatforms } from './helpers/host.js';

const BUSYBOX = '/usr/bin/busybox';
const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];
const PAGE_SIZE = 4096;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-stack-'));
for (const name of ['recurse', 'mmap-gap']) {
  execFileSync('musl-gcc', ['-static', '-O1', '-o', path.join(dir, name), path.join(__dirname, 'fixtures', 'stack', `${name}.c`)]);
}

/** Returns the argv of a shell script that sets the stack limit (in KiB, or "unlimited"), then runs `command`. */
function withStackLimit(limit: string, command: string): string[] {
  return [BUSYBOX, 'sh', '-c', `ulimit -s ${limit}; ${command}; echo "exit $?"`];
}

/** Parses mmap-gap's output: the end of [stack] and the mmap base. */
function parseGap(output: Buffer): { stackEnd: number; mmapBase: number } {
  const match = /^([0-9a-f]+) ([0-9a-f]+)\nexit 0\n$/.exec(output.toString());
  assert.ok(match, `mmap-gap output: ${output.toString()}`);
  return { stackEnd: parseInt(match[1], 16), mmapBase: parseInt(match[2], 16) };
}

/** Runs mmap-gap natively with address space randomization off, so its mmap base is Linux's formula alone. */
function nativeGap(limit: string): { stackEnd: number; mmapBase: number } {
  const native = runNative(['setarch', 'x86_64', '-R', ...withStackLimit(limit, './mmap-gap')], dir, ENV);
  assert.is(native.status, 0, 'native mmap-gap');
  return parseGap(native.stdout);
}

const test = suite('stack growth');

test.after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

for (const platform of testPlatforms()) {
  test(`64 MiB stack limit runs deep recursion on ${platform}`, async () => {
    const output = await compareWithNative(platform, withStackLimit('65536', './recurse 40000'), dir, ENV);
    assert.match(output.toString(), /^\d+\nexit 0\n$/);
  });

  test(`8 MiB stack limit stops growth on ${platform}`, async () => {
    const output = await compareWithNative(platform, withStackLimit('8192', './recurse 40000'), dir, ENV);
    assert.is(output.toString(), 'exit 139\n');

    const shallow = await compareWithNative(platform, withStackLimit('8192', './recurse 20000'), dir, ENV);
    assert.match(shallow.toString(), /^\d+\nexit 0\n$/);
  });

  test(`unlimited stack runs deeper recursion on ${platform}`, async () => {
    const output = await compareWithNative(platform, withStackLimit('unlimited', './recurse 100000'), dir, ENV);
    assert.match(output.toString(), /^\d+\nexit 0\n$/);
  });

  test(`mmap base follows the stack limit on ${platform}`, async () => {
    for (const limit of ['8192', '65536', '262144']) {
      const native = nativeGap(limit);
      const sandboxed = await runInSandbox(withStackLimit(limit, './mmap-gap'), dir, ENV, { platform });
      assert.is(sandboxed.status, 0, sandboxed.stderr);
      const gap = parseGap(sandboxed.stdout);
      assert.is(gap.stackEnd - gap.mmapBase, native.stackEnd - native.mmapBase, `gap below the stack with ulimit -s ${limit}`);
    }
  });

  test(`unlimited stack puts mmap base at a sixth on ${platform}`, async () => {
    // Linux clamps the gap to 5/6 of the address space, whose top is the stack's top here.
    const expected = (top: number): number => Math.ceil((top - Math.floor(top / 6) * 5) / PAGE_SIZE) * PAGE_SIZE;

    const native = nativeGap('unlimited');
    assert.is(native.mmapBase, expected(native.stackEnd), 'native mmap base');

    const sandboxed = await runInSandbox(withStackLimit('unlimited', './mmap-gap'), dir, ENV, { platform });
    assert.is(sandboxed.status, 0, sandboxed.stderr);
    const gap = parseGap(sandboxed.stdout);
    assert.is(gap.mmapBase, expected(gap.stackEnd), 'sandbox mmap base');
  });
}

test.run();
