/**
 * End to end: Debian's static busybox and static hello-world programs (gcc and musl) run natively
 * and in the sandbox, and must give the same stdout and exit status. Afterwards no stub process and
 * no memfd may be left.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { descendants, openMemfds, runInSandbox, runNative, writeNumbers } from './helpers/host.js';

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

interface Fixture {
  dir: string;
  memfdsBefore: string[];
  descendantsBefore: number[];
}

const test = suite<Fixture>('busybox and hello world, native and sandboxed', {} as Fixture);

test.before((fixture) => {
  fixture.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-compare-'));
  fixture.memfdsBefore = openMemfds();
  fixture.descendantsBefore = descendants();
  const dir = fixture.dir;

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
});

test.after((fixture) => {
  fs.rmSync(fixture.dir, { recursive: true, force: true });
});

async function compare(dir: string, argv: string[]): Promise<void> {
  const native = runNative(argv, dir, ENV);
  const sandboxed = await runInSandbox(argv, dir, ENV);
  const label = argv.join(' ');
  assert.is(sandboxed.status, native.status, `exit status of ${label}; sandbox stderr: ${sandboxed.stderr}`);
  assert.ok(sandboxed.stdout.equals(native.stdout), `stdout of ${label} differs:\n--- native\n${native.stdout.toString().slice(0, 2000)}\n--- sandbox\n${sandboxed.stdout.toString().slice(0, 2000)}`);
}

test('busybox true', ({ dir }) => compare(dir, [BUSYBOX, 'true']));
test('busybox false', ({ dir }) => compare(dir, [BUSYBOX, 'false']));
test('busybox echo hello', ({ dir }) => compare(dir, [BUSYBOX, 'echo', 'hello']));
test('busybox cat FILE', ({ dir }) => compare(dir, [BUSYBOX, 'cat', 'text.txt']));
test('busybox cat of a missing file', ({ dir }) => compare(dir, [BUSYBOX, 'cat', 'missing.txt']));
test('busybox wc FILE', ({ dir }) => compare(dir, [BUSYBOX, 'wc', 'text.txt', 'numbers.txt']));
test('busybox ls -lR DIR', ({ dir }) => compare(dir, [BUSYBOX, 'ls', '-lR', 'tree']));
test('busybox md5sum FILE', ({ dir }) => compare(dir, [BUSYBOX, 'md5sum', 'numbers.txt', 'text.txt']));
test('busybox sort -n on 1 MB', ({ dir }) => compare(dir, [BUSYBOX, 'sort', '-n', 'numbers.txt']));
test('gcc -static hello world', ({ dir }) => compare(dir, [path.join(dir, 'hello-gcc'), 'first', '7']));
test('musl-gcc -static hello world', ({ dir }) => compare(dir, [path.join(dir, 'hello-musl'), 'first', '9']));
test('gcc -static-pie hello world', ({ dir }) => compare(dir, [path.join(dir, 'hello-pie'), 'first', '0']));

test('busybox found through PATH', async ({ dir }) => {
  const sandboxed = await runInSandbox(['busybox', 'echo', 'via', 'PATH'], dir, ENV);
  assert.is(sandboxed.status, 0);
  assert.is(sandboxed.stdout.toString(), 'via PATH\n');
});

test('no stub process or memfd is left', async ({ memfdsBefore, descendantsBefore }) => {
  // Stub processes are reaped asynchronously after close(); give them a moment.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(descendants(), descendantsBefore, 'descendant processes left behind');
  assert.equal(openMemfds(), memfdsBefore, 'memfds left open');
});

test.run();
