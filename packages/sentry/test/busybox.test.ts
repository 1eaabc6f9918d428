/**
 * End to end: Debian's static busybox and static hello-world programs (gcc and musl) run natively
 * and in the sandbox on every platform that can run here, and must give the same stdout and exit
 * status. Afterwards no stub process and no memfd may be left.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { assertNothingLeft, compareWithNative, recordHostBaseline, runInSandbox, testPlatforms, writeNumbers } from './helpers/host.js';

const BUSYBOX = '/usr/bin/busybox';
const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C', 'TZ=UTC', 'HOME=/'];

const HELLO_SOURCE = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
  printf("hello, world\\n");
  for (int i = 0; i < argc; i++) printf("argv[%d] = %s\\n", i, argv[i]);
  const char *home = getenv("HOME");
  printf("HOME = %s\\n", home ? home : "(unset)");
  /* Large enough for malloc to use mmap, then grown with mremap. */
  char *block = malloc(8 << 20);
  memset(block, 7, 8 << 20);
  block = realloc(block, 64 << 20);
  printf("block %d %d\\n", block[0], block[(8 << 20) - 1]);
  free(block);
  return argc > 2 ? atoi(argv[2]) : 0;
}
`;

/** Builds the programs and input files every suite uses; returns the directory. */
function prepare(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-compare-'));

  fs.writeFileSync(path.join(dir, 'hello.c'), HELLO_SOURCE);
  execFileSync('gcc', ['-static', '-O2', '-o', path.join(dir, 'hello-gcc'), path.join(dir, 'hello.c')]);
  execFileSync('musl-gcc', ['-static', '-O2', '-o', path.join(dir, 'hello-musl'), path.join(dir, 'hello.c')]);
  execFileSync('gcc', ['-static-pie', '-O2', '-o', path.join(dir, 'hello-pie'), path.join(dir, 'hello.c')]);

  writeNumbers(path.join(dir, 'numbers.txt'), 1024 * 1024);
  fs.writeFileSync(path.join(dir, 'text.txt'), 'one two three\nfour five\n\nsix\n'.repeat(1000));

  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'sub', 'deeper'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'a.txt'), 'alpha\n');
  fs.writeFileSync(path.join(tree, 'sub', 'b.bin'), Buffer.alloc(5000, 1));
  fs.writeFileSync(path.join(tree, 'sub', 'deeper', 'c'), '');
  fs.chmodSync(path.join(tree, 'sub', 'deeper', 'c'), 0o750);
  fs.symlinkSync('../a.txt', path.join(tree, 'sub', 'link'));
  const fixed = new Date('2024-02-03T04:05:06Z');
  for (const entry of ['a.txt', 'sub/b.bin', 'sub/deeper/c', 'sub/deeper', 'sub', '.']) {
    fs.utimesSync(path.join(tree, entry), fixed, fixed);
  }
  return dir;
}

const dir = prepare();
const baseline = recordHostBaseline();
const platforms = testPlatforms();

const cases: Array<[string, string[]]> = [
  ['busybox true', [BUSYBOX, 'true']],
  ['busybox false', [BUSYBOX, 'false']],
  ['busybox echo hello', [BUSYBOX, 'echo', 'hello']],
  ['busybox cat FILE', [BUSYBOX, 'cat', 'text.txt']],
  ['busybox cat of a missing file', [BUSYBOX, 'cat', 'missing.txt']],
  ['busybox wc FILE', [BUSYBOX, 'wc', 'text.txt', 'numbers.txt']],
  ['busybox ls -lR DIR', [BUSYBOX, 'ls', '-lR', 'tree']],
  ['busybox md5sum FILE', [BUSYBOX, 'md5sum', 'numbers.txt', 'text.txt']],
  ['busybox sort -n on 1 MB', [BUSYBOX, 'sort', '-n', 'numbers.txt']],
  ['gcc -static hello world', [path.join(dir, 'hello-gcc'), 'first', '7']],
  ['musl-gcc -static hello world', [path.join(dir, 'hello-musl'), 'first', '9']],
  ['gcc -static-pie hello world', [path.join(dir, 'hello-pie'), 'first', '0']],
];

for (const platform of platforms) {
  const test = suite(`native and sandboxed on ${platform}`);
  for (const [name, argv] of cases) {
    test(name, async () => {
      await compareWithNative(platform, argv, dir, ENV);
    });
  }

  test('busybox found through PATH', async () => {
    const sandboxed = await runInSandbox(['busybox', 'echo', 'via', 'PATH'], dir, ENV, { platform });
    assert.is(sandboxed.status, 0);
    assert.is(sandboxed.stdout.toString(), 'via PATH\n');
  });

  test.run();
}

const cleanup = suite('after the sandboxes');

cleanup('at least one platform ran', () => {
  assert.ok(platforms.length > 0, 'no platform is available');
});

cleanup('no stub process or memfd is left', async () => {
  await assertNothingLeft(baseline);
});

cleanup.after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

cleanup.run();
