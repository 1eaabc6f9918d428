import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Flags } from '../flags.js';

export async function runVersion(_args: string[], _flags: Flags): Promise<number> {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  process.stdout.write(`runsc version ${manifest.version} (tsvisor)\nnode ${process.version}\n`);
  return 0;
}
