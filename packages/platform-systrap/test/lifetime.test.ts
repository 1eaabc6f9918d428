import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { holdersOfStubMemfds, isAlive } from './helpers.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'run-and-wait.ts');

async function waitUntilGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  return !isAlive(pid);
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
