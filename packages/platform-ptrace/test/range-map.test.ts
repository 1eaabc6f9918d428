import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { RangeMap } from '../src/range-map.js';

test('range map returns undefined outside ranges', () => {
  const map = new RangeMap();
  map.set(0x1000, 0x3000, 1);
  assert.is(map.get(0x0fff), undefined);
  assert.is(map.get(0x1000), 1);
  assert.is(map.get(0x2fff), 1);
  assert.is(map.get(0x3000), undefined);
});

test('range map set replaces the middle', () => {
  const map = new RangeMap();
  map.set(0x1000, 0x5000, 1);
  map.set(0x2000, 0x3000, 3);
  assert.is(map.get(0x1fff), 1);
  assert.is(map.get(0x2000), 3);
  assert.is(map.get(0x2fff), 3);
  assert.is(map.get(0x3000), 1);
  assert.is(map.get(0x4fff), 1);
});

test('range map remove splits and spans ranges', () => {
  const map = new RangeMap();
  map.set(0x1000, 0x2000, 1);
  map.set(0x3000, 0x4000, 2);
  map.set(0x5000, 0x6000, 4);
  map.remove(0x1800, 0x5800);
  assert.is(map.get(0x17ff), 1);
  assert.is(map.get(0x1800), undefined);
  assert.is(map.get(0x3000), undefined);
  assert.is(map.get(0x57ff), undefined);
  assert.is(map.get(0x5800), 4);
});

test('range map handles adjacent ranges', () => {
  const map = new RangeMap();
  map.set(0x2000, 0x3000, 2);
  map.set(0x1000, 0x2000, 1);
  map.set(0x3000, 0x4000, 3);
  assert.is(map.get(0x1fff), 1);
  assert.is(map.get(0x2000), 2);
  assert.is(map.get(0x3000), 3);
});

test.run();
