/**
 * runSandbox's results for bad input (one-line SandboxError messages) and to programs that die of a
 * signal (exit status 128 + N).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runSandbox, SandboxError } from '../src/index.js';
import { createPlatform } from '@tsvisor/platform-api';
import { descendants, openMemfds, runInSandbox, runNative, settledHostState, testPlatforms } from './helpers/host.js';

const CRASH_SOURCE = `
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
int main(int argc, char **argv) {
  if (strcmp(argv[1], "segv") == 0) *(volatile int *)16 = 1;
  if (strcmp(argv[1], "abort") == 0) abort();
  if (strcmp(argv[1], "raise-ignored") == 0) { signal(SIGTERM, SIG_IGN); raise(SIGTERM); return 5; }
  if (strcmp(argv[1], "read-only") == 0) {
    char *page = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    page[0] = 1;
  }
  if (strcmp(argv[1], "reserve") == 0) {
    /* A large PROT_NONE reservation made accessible piece by piece, as Go and V8 do. */
    char *base = mmap(0, 1UL << 36, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return 10;
    if (mprotect(base + (1UL << 35), 64 << 20, PROT_READ | PROT_WRITE) != 0) return 11;
    for (long i = 0; i < (64 << 20); i += 4096) base[(1UL << 35) + i] = (char)i;
    for (long i = 0; i < (64 << 20); i += 4096) if (base[(1UL << 35) + i] != (char)i) return 12;
    if (argc > 2) base[0] = 1;
  }
  return 0;
}
`;

interface Fixture {
  dir: string;
  crash: string;
  memfdsBefore: string[];
  descendantsBefore: number[];
}

const test = suite<Fixture>('runSandbox errors and signals', {} as Fixture);

test.before((fixture) => {
  fixture.memfdsBefore = openMemfds();
  fixture.descendantsBefore = descendants();
  fixture.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-errors-'));
  fs.writeFileSync(path.join(fixture.dir, 'crash.c'), CRASH_SOURCE);
  fixture.crash = path.join(fixture.dir, 'crash');
  execFileSync('gcc', ['-static', '-O1', '-o', fixture.crash, path.join(fixture.dir, 'crash.c')]);
  execFileSync('gcc', ['-O1', '-Wl,--dynamic-linker=/nonexistent/ld.so', '-o', path.join(fixture.dir, 'no-interpreter'), path.join(fixture.dir, 'crash.c')]);
  fs.writeFileSync(path.join(fixture.dir, 'script.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  fs.writeFileSync(path.join(fixture.dir, 'not-executable'), 'data', { mode: 0o644 });
});

test.after((fixture) => {
  fs.rmSync(fixture.dir, { recursive: true, force: true });
});

async function sandboxError(argv: string[], platform?: string): Promise<string> {
  try {
    await runSandbox({ argv, platform, stdio: [] });
  } catch (error) {
    assert.instance(error, SandboxError);
    const message = (error as Error).message;
    assert.not.match(message, '\n', 'the message is one line');
    return message;
  }
  throw new assert.Assertion({ message: `runSandbox(${argv.join(' ')}) succeeded`, operator: 'throws', expects: 'SandboxError', actual: 'success', generated: false });
}

test('missing program', async ({ dir }) => {
  const missing = path.join(dir, 'nothing-here');
  assert.is(await sandboxError([missing]), `${missing}: no such file or directory`);
});

test('program not found in PATH', async () => {
  assert.is(await sandboxError(['tsvisor-no-such-command']), 'tsvisor-no-such-command: command not found in PATH');
});

test('script runs through its interpreter', async ({ dir }) => {
  const script = path.join(dir, 'script.sh');
  const sandboxed = await runInSandbox([script, 'ignored'], dir, []);
  const native = runNative([script, 'ignored'], dir, []);
  assert.is(sandboxed.stdout.toString(), native.stdout.toString());
  assert.is(sandboxed.stdout.toString(), 'hi\n');
  assert.is(sandboxed.status, 0);
});

test('script with a missing interpreter', async ({ dir }) => {
  const script = path.join(dir, 'no-interpreter.sh');
  fs.writeFileSync(script, '#!/nonexistent/interpreter -x\necho never\n', { mode: 0o755 });
  assert.is(await sandboxError([script]), `${script}: cannot run its interpreter /nonexistent/interpreter (ENOENT)`);
});

test('data file is not an ELF executable', async ({ dir }) => {
  const file = path.join(dir, 'data');
  fs.writeFileSync(file, 'plain data\n', { mode: 0o755 });
  assert.is(await sandboxError([file]), `${file}: not an ELF executable`);
});

test('/proc/self/exe as the first program', async () => {
  assert.match(await sandboxError(['/proc/self/exe']), /^\/proc\/self\/exe: no such file or directory, because the sandbox runs no program yet/);
});

test('file without execute permission', async ({ dir }) => {
  const file = path.join(dir, 'not-executable');
  assert.is(await sandboxError([file]), `${file}: permission denied`);
});

test('missing interpreter', async ({ dir }) => {
  const program = path.join(dir, 'no-interpreter');
  assert.is(await sandboxError([program]), `${program}: cannot open its interpreter /nonexistent/ld.so (ENOENT)`);
});

test('big-endian ELF names the byte order', async ({ dir }) => {
  const file = path.join(dir, 'big-endian');
  const header = fs.readFileSync('/usr/bin/busybox').subarray(0, 4096);
  header[5] = 2;
  fs.writeFileSync(file, header, { mode: 0o755 });
  assert.is(await sandboxError([file]), `${file}: wrong byte order (big-endian ELF); only little-endian x86-64 executables can run`);
});

test('segment beyond the usable range', async ({ dir }) => {
  // Linux runs this program; platforms whose stubs live high in the address space cannot.
  const program = path.join(dir, 'high');
  fs.writeFileSync(`${program}.S`, '.globl _start\n.text\n_start:\n  mov $60, %eax\n  mov $3, %edi\n  syscall\n');
  execFileSync('gcc', ['-nostdlib', '-static', '-Wl,-Ttext-segment=0x7ffffff00000', '-o', program, `${program}.S`]);
  for (const platform of testPlatforms()) {
    const instance = createPlatform(platform);
    const maxAddress = instance.maxUserAddress;
    instance.close();
    if (maxAddress >= 0x7ffffff02000) {
      assert.is((await runSandbox({ argv: [program], platform, stdio: [] })).status, 3, platform);
      continue;
    }
    const message = await sandboxError([program], platform);
    assert.match(message, `${program}: a segment at 0x7ffffff00000-0x7ffffff01000 lies outside the sandbox's usable address range`, platform);
  }
});

test('unknown platform', async () => {
  assert.match(await sandboxError(['/usr/bin/busybox', 'true'], 'no-such-platform'), 'unknown platform "no-such-platform"');
});

test('segmentation fault gives status 139', async ({ dir, crash }) => {
  assert.is((await runInSandbox([crash, 'segv'], dir, [])).status, 139);
});

test('write to a read-only mapping gives status 139', async ({ dir, crash }) => {
  assert.is((await runInSandbox([crash, 'read-only'], dir, [])).status, 139);
});

test('abort gives status 134', async ({ dir, crash }) => {
  assert.is((await runInSandbox([crash, 'abort'], dir, [])).status, 134);
});

test('ignored signal does not kill', async ({ dir, crash }) => {
  assert.is((await runInSandbox([crash, 'raise-ignored'], dir, [])).status, 5);
});

test('write to a closed pipe gives status 141', async ({ dir }) => {
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const writer = fs.openSync(fifo, fs.constants.O_WRONLY);
  fs.closeSync(reader);
  try {
    const result = await runSandbox({ argv: ['/usr/bin/busybox', 'echo', 'lost'], stdio: [0, writer, writer] });
    assert.is(result.status, 141);
    assert.is(result.signal, 13);
  } finally {
    fs.closeSync(writer);
  }
});

test('PROT_NONE reservation commits on demand', async ({ dir, crash }) => {
  assert.is((await runInSandbox([crash, 'reserve'], dir, [])).status, 0);
});

test('PROT_NONE part of a reservation faults', async ({ dir, crash }) => {
  assert.is((await runInSandbox([crash, 'reserve', 'touch'], dir, [])).status, 139);
});

test('strace prints each call', async ({ dir }) => {
  const lines: string[] = [];
  const result = await runInSandbox(['/usr/bin/busybox', 'echo', 'traced'], dir, [], { strace: (line) => lines.push(line) });
  assert.is(result.status, 0);
  assert.ok(lines.includes('[1] write(1, "traced\\n", 7) = 7'), lines.join('\n'));
  assert.ok(lines.includes('[1] exit_group(0) = ?'), lines.join('\n'));
  assert.ok(lines.some((line) => /^\[1\] brk\(NULL\) = 0x[0-9a-f]+$/.test(line)), lines.join('\n'));
});

test('failed runs leave no process or memfd', async ({ memfdsBefore, descendantsBefore }) => {
  const left = await settledHostState(descendantsBefore, memfdsBefore);
  assert.equal(left.descendants, descendantsBefore, 'descendant processes left behind');
  assert.equal(left.memfds, memfdsBefore, 'memfds left open');
});

test.run();
