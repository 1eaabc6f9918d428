import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  listPlatforms,
  lookupPlatform,
  PlatformUnavailableError,
  registerPlatform,
  resetRegistryForTests,
  type PlatformDescriptor,
} from '../src/index.js';

function fake(name: string, rank: number, available: boolean): PlatformDescriptor {
  return {
    name,
    description: `fake ${name}`,
    rank: () => rank,
    probe: () => ({ available, reason: available ? '' : `${name} needs something missing` }),
    create: () => {
      throw new Error('not used');
    },
  };
}

test.before.each(() => {
  resetRegistryForTests();
});

test('auto picks the highest ranked available platform', () => {
  registerPlatform(fake('slow', 10, true));
  registerPlatform(fake('fast', 30, false));
  registerPlatform(fake('middle', 20, true));
  const found = lookupPlatform('auto');
  assert.is(found.descriptor.name, 'middle');
  assert.match(found.reason, /fast is unavailable \(fast needs something missing\)/);
});

test('listing is sorted best first with reasons', () => {
  registerPlatform(fake('slow', 10, true));
  registerPlatform(fake('fast', 30, false));
  const names = listPlatforms().filter((p) => p.name === 'slow' || p.name === 'fast');
  assert.equal(names.map((p) => [p.name, p.available, p.reason]), [
    ['fast', false, 'fast needs something missing'],
    ['slow', true, ''],
  ]);
});

test('unknown platform error lists what is installed', () => {
  registerPlatform(fake('slow', 10, true));
  registerPlatform(fake('fast', 30, false));
  try {
    lookupPlatform('nonesuch');
    assert.unreachable('lookup should fail');
  } catch (error) {
    assert.instance(error, PlatformUnavailableError);
    const message = (error as Error).message;
    assert.match(message, /unknown platform "nonesuch"/);
    assert.match(message, /slow \(available\)/);
    assert.match(message, /fast \(unavailable: fast needs something missing\)/);
    assert.not.match(message, /\n/);
  }
});

test('unavailable platform by name says why', () => {
  registerPlatform(fake('fast', 30, false));
  assert.throws(() => lookupPlatform('fast'), /platform "fast" cannot run here: fast needs something missing/);
});

test('registry state is shared through globalThis', () => {
  registerPlatform(fake('shared', 5, true));
  const key = Symbol.for('tsvisor.platform-api.registry');
  const state = (globalThis as unknown as Record<symbol, { descriptors: Map<string, unknown> }>)[key];
  assert.ok(state.descriptors.has('shared'));
});

test('invalid descriptors are rejected', () => {
  assert.throws(() => registerPlatform({ name: 'auto' } as PlatformDescriptor), /other than "auto"/);
  assert.throws(() => registerPlatform({ name: 'x', description: '', rank: () => 1 } as unknown as PlatformDescriptor), /probe\(\)/);
});


test.run();
