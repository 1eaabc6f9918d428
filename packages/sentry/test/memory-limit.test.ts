/**
 * A platform that can map only part of a file (the KVM platform maps each file into a fixed slice
 * of guest-physical memory) declares `maxFileSize`, and the sentry sizes its memory file to fit.
 * A program that needs more then fails with the same "out of memory" message as on a platform
 * without a limit, instead of the platform failing in mapFile.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPlatform, registerPlatform, type Platform } from '@tsvisor/platform-api';
import { runSandbox, SandboxError } from '../src/index.js';
import { testPlatforms } from './helpers/host.js';

const GIB = 2 ** 30;
const LIMIT = 2 * GIB;

/** Builds a static program with a bss of `gib` GiB that writes its first byte and exits with 7. */
function buildBssProgram(dir: string, gib: number): string {
  const program = path.join(dir, `bss-${gib}g`);
  const source = [
    '.globl _start', '.text', '_start:', '  movabs $big, %rdi', '  movb $1, (%rdi)',
    '  mov $60, %eax', '  mov $7, %edi', '  syscall', '.bss', `.lcomm big, ${gib} * (1 << 30)`, '',
  ].join('\n');
  fs.writeFileSync(`${program}.S`, source);
  execFileSync('gcc', ['-nostdlib', '-static', '-o', program, `${program}.S`]);
  return program;
}

async function loadError(argv: string[], platform: string): Promise<string> {
  try {
    await runSandbox({ argv, platform, stdio: [] });
  } catch (error) {
    assert.instance(error, SandboxError);
    return (error as Error).message;
  }
  return 'no error';
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-memory-limit-'));
const test = suite('platform memory-file size limit');

test.before(() => {
  // Registered when the suite starts, so suites that list the platforms as they load never use it.
  registerPlatform({
    name: 'limited-file-size',
    description: 'a real platform that declares a 2 GiB maxFileSize; for tests only',
    rank: () => 0,
    probe: () => ({ available: true, reason: '' }),
    create: (): Platform => {
      const inner = createPlatform(testPlatforms()[0]);
      return {
        name: 'limited-file-size',
        supports: inner.supports,
        minUserAddress: inner.minUserAddress,
        maxUserAddress: inner.maxUserAddress,
        maxFileSize: LIMIT,
        newAddressSpace: () => inner.newAddressSpace(),
        newContext: () => inner.newContext(),
        close: () => inner.close(),
      } as Platform;
    },
  });
});

test.after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bss within the limit runs', async () => {
  const program = buildBssProgram(dir, 1);
  assert.is((await runSandbox({ argv: [program], platform: 'limited-file-size', stdio: [] })).status, 7);
});

test('bss beyond the limit is out of memory', async () => {
  const program = buildBssProgram(dir, 3);
  assert.is(await loadError([program], 'limited-file-size'), `${program}: cannot load: out of memory`);
  assert.is((await runSandbox({ argv: [program], platform: testPlatforms()[0], stdio: [] })).status, 7, 'the real platform has room');
});

test('bss beyond every memory file gives the same message', async () => {
  const program = buildBssProgram(dir, 70);
  for (const platform of testPlatforms()) {
    assert.is(await loadError([program], platform), `${program}: cannot load: out of memory`, platform);
  }
});

test.run();
