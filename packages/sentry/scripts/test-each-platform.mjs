#!/usr/bin/env node
// Runs the sentry's whole test suite once per platform that can run on this host, with
// TSVISOR_PLATFORM naming it, so every test passes on every installed platform and not only on the
// one `auto` picks. Exits non-zero if any run fails.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { listPlatforms } = require('@tsvisor/platform-api');

const platforms = process.env.TSVISOR_PLATFORM
  ? [process.env.TSVISOR_PLATFORM]
  : listPlatforms().filter((platform) => platform.available).map((platform) => platform.name);
if (platforms.length === 0) {
  console.error('no platform can run on this host; run `npx runsc platforms` to see why');
  process.exit(1);
}

const failed = [];
for (const platform of platforms) {
  console.log(`\n# sentry tests on ${platform}`);
  const run = spawnSync('npx', ['uvu', '-r', 'tsx', 'test', ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, TSVISOR_PLATFORM: platform },
  });
  if (run.status !== 0) failed.push(platform);
}
if (failed.length > 0) {
  console.error(`sentry tests failed on: ${failed.join(', ')}`);
  process.exit(1);
}
