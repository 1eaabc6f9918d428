import * as assert from 'uvu/assert';
import { test } from 'uvu';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SwitchKind } from '@tsvisor/platform-api';
import { isAlive, runLeavingFixture, startHoldingFixture, waitUntilGone } from '@tsvisor/platform-api/testing';
import { holdersOfStubMemfds } from './helpers.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'run-and-wait.ts');

test('stub dies when Node is SIGKILLed', async () => {
  const { child, stub } = await startHoldingFixture(fixture);
  assert.ok(isAlive(stub), 'the stub runs while Node does');
  assert.ok(holdersOfStubMemfds().includes(child.pid!), 'Node maps the stub shared region');

  child.kill('SIGKILL');
  await new Promise((resolve) => child.on('exit', resolve));
  assert.ok(await waitUntilGone(stub), `stub process ${stub} outlived Node`);
  assert.equal(holdersOfStubMemfds().filter((pid) => pid === child.pid || pid === stub), [], 'no stub shared region is left');
});

test('unreleased platform lets Node exit', async () => {
  const { stub, kind } = runLeavingFixture(fixture);
  assert.is(kind, SwitchKind.Interrupted, 'the switch ended as Interrupted');
  assert.ok(await waitUntilGone(stub), `stub process ${stub} outlived Node`);
});

test.run();
