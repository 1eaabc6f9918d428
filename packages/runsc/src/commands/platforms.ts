import { listPlatforms, loadPlatformModule, platformLoadErrors } from '@tsvisor/platform-api';
import { applyDebugFlags, parseFlags, type Flags } from '../flags.js';

/** `runsc platforms`: one line per installed platform, best first, with why it cannot run here. */
export async function runPlatforms(args: string[], flags: Flags): Promise<number> {
  parseFlags(args, flags);
  applyDebugFlags(flags);
  for (const specifier of flags.platformModules) loadPlatformModule(specifier);

  const listings = listPlatforms();
  if (listings.length === 0) {
    process.stdout.write('No platform is installed; install @tsvisor/platform-ptrace.\n');
  }
  const width = Math.max(8, ...listings.map((p) => p.name.length)) + 2;
  for (const platform of listings) {
    const status = platform.available ? 'available' : `unavailable: ${platform.reason}`;
    process.stdout.write(`${platform.name.padEnd(width)}${platform.description}\n${''.padEnd(width)}${status}\n`);
  }
  for (const [specifier, message] of platformLoadErrors()) {
    process.stdout.write(`${specifier.padEnd(width)}failed to load: ${message}\n`);
  }
  return listings.some((p) => p.available) ? 0 : 1;
}
