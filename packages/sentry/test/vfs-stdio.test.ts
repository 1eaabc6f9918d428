/**
 * Stdio descriptors wrap runsc's own. Terminal queries return the real terminal's settings, reads
 * and writes that would block return a promise instead of stalling the event loop, and a full pipe
 * loses no data. Each case runs in a child Node process whose stdio the test controls.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

import { Errno } from '../src/errno.js';

const test = suite('vfs stdio');

const here = dirname(fileURLToPath(import.meta.url));
const fakeTaskModule = join(here, 'vfs-fake-task.ts');
const fdTableModule = join(here, '..', 'src', 'vfs', 'fd-table.ts');

/** Child program prologue: a fake task whose descriptors 0-2 wrap the child's own stdio. */
const PROLOGUE = `
import { readdirSync } from 'node:fs';
// The package is CommonJS, so tsx hands a TypeScript module's exports over as the default export.
const load = async (path) => { const module = await import(path); return module.default ?? module; };
const { fakeTask } = await load(${JSON.stringify(fakeTaskModule)});
const { FdTable } = await load(${JSON.stringify(fdTableModule)});
const openFds = () => readdirSync('/proc/self/fd').length;
const fdsBefore = openFds();
const sandbox = fakeTask('/', { fdTable: FdTable.withStdio([0, 1, 2]) });
const report = (value) => process.stderr.write('RESULT ' + JSON.stringify(value) + '\\n');
`;

// libuv closes a finished poll watch's descriptor in the closing phase of the loop iteration, so
// the count waits for the next iteration.
const EPILOGUE = `
sandbox.close();
await new Promise((resolve) => setImmediate(resolve));
await new Promise((resolve) => setImmediate(resolve));
report({ leakedFds: openFds() - fdsBefore });
`;

function childArgs(body: string): string[] {
  return ['--import', 'tsx', '--input-type=module', '-e', PROLOGUE + body + EPILOGUE];
}

/** Parses the RESULT lines a child wrote. */
function results(output: string): Record<string, unknown> {
  const merged: Record<string, unknown> = {};
  for (const line of output.split(/\r?\n/)) {
    if (line.startsWith('RESULT ')) Object.assign(merged, JSON.parse(line.slice(7)));
  }
  return merged;
}

test('terminal answers TCGETS and TIOCGWINSZ', () => {
  const body = `
const winsize = sandbox.memory.alloc(8);
const termios = sandbox.memory.alloc(36);
const winsizeResult = await sandbox.call('ioctl', 1, 0x5413, winsize);
const termiosResult = await sandbox.call('ioctl', 0, 0x5401, termios);
const ws = sandbox.memory.copyIn(winsize, 8);
const tio = sandbox.memory.copyIn(termios, 36);
report({ winsizeResult, termiosResult, rows: ws.readUInt16LE(0), cols: ws.readUInt16LE(2), lflag: tio.readUInt32LE(12) });
`;
  const command = ['stty cols 123 rows 45;', 'exec', process.execPath, ...childArgs(body).map((arg) => `'${arg.replace(/'/g, `'\\''`)}'`)].join(' ');
  // script(1) gives the child a pseudo-terminal as stdin, stdout and stderr.
  const run = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', cwd: here });
  const output = results(run.stdout);
  assert.is(output.winsizeResult, 0);
  assert.is(output.termiosResult, 0);
  assert.is(output.rows, 45);
  assert.is(output.cols, 123);
  const ICANON = 0o2;
  const ECHO = 0o10;
  assert.is((output.lflag as number) & ICANON, ICANON);
  assert.is((output.lflag as number) & ECHO, ECHO);
  // A descriptor the loader opened before the count may close later, so fewer is not a leak.
  assert.ok((output.leakedFds as number) <= 0, `${output.leakedFds} descriptors leaked`);
});

test('pipe is not a terminal', () => {
  const body = `
const buffer = sandbox.memory.alloc(64);
report({ tcgets: await sandbox.call('ioctl', 0, 0x5401, buffer), winsize: await sandbox.call('ioctl', 1, 0x5413, buffer) });
`;
  const run = spawnSync(process.execPath, childArgs(body), { encoding: 'utf8', cwd: here, stdio: ['pipe', 'pipe', 'pipe'] });
  const output = results(run.stderr);
  assert.is(output.tcgets, -Errno.ENOTTY);
  assert.is(output.winsize, -Errno.ENOTTY);
  // A descriptor the loader opened before the count may close later, so fewer is not a leak.
  assert.ok((output.leakedFds as number) <= 0, `${output.leakedFds} descriptors leaked`);
});

/** Runs `body` in a child, calls `onWaiting` when the child reports WAITING, and returns its results and stdout. */
function runInteractive(body: string, onWaiting: (child: ReturnType<typeof spawn>) => void): Promise<{ output: Record<string, unknown>; stdout: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, childArgs(body), { cwd: here, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    const stdout: Buffer[] = [];
    let reading = false;
    child.stdout.pause();
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      if (!reading && stderr.includes('WAITING\n')) {
        reading = true;
        onWaiting(child);
      }
    });
    child.on('error', reject);
    child.on('close', () => resolve({ output: results(stderr), stdout: Buffer.concat(stdout) }));
  });
}

test('read of empty stdin waits without blocking', async () => {
  const body = `
const buffer = sandbox.memory.alloc(64);
const pending = sandbox.task.fdTable.get(0).read(sandbox.task, new Uint8Array(64));
const waited = typeof pending !== 'number';
process.stderr.write('WAITING\\n');
const count = await pending;
report({ waited, count });
`;
  const { output } = await runInteractive(body, (child) => child.stdin!.end('data\n'));
  assert.is(output.waited, true);
  assert.is(output.count, 5);
  // A descriptor the loader opened before the count may close later, so fewer is not a leak.
  assert.ok((output.leakedFds as number) <= 0, `${output.leakedFds} descriptors leaked`);
});

test('write to a full pipe loses nothing', async () => {
  const size = 2 * 1024 * 1024;
  const body = `
const size = ${size};
const addr = sandbox.memory.alloc(size);
const data = Buffer.alloc(size);
for (let i = 0; i < size; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
sandbox.memory.copyOut(addr, data);
const pending = sandbox.task.fdTable.get(1).write(sandbox.task, sandbox.memory.copyIn(addr, size));
// A pipe buffers 64 KiB, so the write cannot finish before the parent starts reading.
const waited = typeof pending !== 'number';
process.stderr.write('WAITING\\n');
report({ waited, written: await pending, sha: (await import('node:crypto')).createHash('sha256').update(data).digest('hex') });
`;
  const { output, stdout } = await runInteractive(body, (child) => child.stdout!.resume());
  assert.is(output.waited, true);
  assert.is(output.written, size);
  assert.is(stdout.length, size);
  assert.is(createHash('sha256').update(stdout).digest('hex'), output.sha);
  // A descriptor the loader opened before the count may close later, so fewer is not a leak.
  assert.ok((output.leakedFds as number) <= 0, `${output.leakedFds} descriptors leaked`);
});

test.run();
