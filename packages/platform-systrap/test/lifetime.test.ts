import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAlive } from './helpers.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'run-and-wait.ts');

async function waitUntilGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  return !isAlive(pid);
}

/** Pids of processes on this host that map or hold a stub's shared region (memfd "tsvisor-systrap-stub"). */
function holdersOfStubMemfds(): number[] {
  const holders: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const maps = fs.readFileSync(`/proc/${entry}/maps`, 'utf8');
      const fds = fs.readdirSync(`/proc/${entry}/fd`).map((fd) => {
        try {
          return fs.readlinkSync(`/proc/${entry}/fd/${fd}`);
        } catch {
          return '';
        }
      });
      if (maps.includes('tsvisor-systrap-stub') || fds.some((target) => target.includes('tsvisor-systrap-stub'))) {
        holders.push(Number(entry));
      }
    } catch {
      // The process ended while we looked.
    }
  }
  return holders;
}

test('stub dies when Node is SIGKILLed', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, 'hold'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('\n')) resolve(output.split('\n')[0]);
    });
    child.on('exit', (code) => reject(new Error(`the fixture exited with ${code} before printing`)));
  });
  const { stub } = JSON.parse(line) as { stub: number };
  assert.ok(isAlive(stub), 'the stub runs while Node does');
  assert.ok(holdersOfStubMemfds().includes(child.pid!), 'Node maps the stub shared region');

  child.kill('SIGKILL');
  await new Promise((resolve) => child.on('exit', resolve));
  assert.ok(await waitUntilGone(stub), `stub process ${stub} outlived Node`);
  assert.equal(holdersOfStubMemfds().filter((pid) => pid === child.pid || pid === stub), [], 'no stub shared region is left');
});

test('unreleased platform lets Node exit', async () => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', fixture, 'leave'], { encoding: 'utf8', timeout: 30_000 });
  assert.is(result.signal, null, 'Node did not exit by itself');
  assert.is(result.status, 0, result.stderr);
  const [first, second] = result.stdout.split('\n');
  const { stub } = JSON.parse(first) as { stub: number };
  assert.equal(JSON.parse(second), { kind: 3 }, 'the switch ended as Interrupted');
  assert.ok(await waitUntilGone(stub), `stub process ${stub} outlived Node`);
});

test.run();
