#!/usr/bin/env node
// Whole-program costs: python3 start-up (`python3 -c pass`) and `find /usr/lib` (a walk of tens of
// thousands of directory entries), run natively, under tsvisor on every platform that can run
// here, and under gVisor's runsc (Debian package `runsc`) in the same run. Each figure is the best
// wall-clock time of several runs, start-up included, because start-up is what these measure.
//
//   node bench/programs.mjs [--runs=R]

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const runscCli = path.join(here, '..', 'packages', 'runsc', 'bin', 'runsc.js');
const options = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=')));
const runs = Number(options.runs ?? 3);

const workloads = [
  { label: 'python3 start-up', argv: ['/usr/bin/python3', '-c', 'pass'] },
  { label: 'find /usr/lib', argv: ['/usr/bin/find', '/usr/lib'] },
];

function timeOnce(command, args) {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status}: ${result.stderr.trim().split('\n').pop()}`);
  }
  return seconds;
}

function measure(prefix, argv) {
  try {
    let min = Infinity;
    for (let i = 0; i < runs; i++) min = Math.min(min, timeOnce(prefix[0], [...prefix.slice(1), ...argv]));
    return { seconds: min };
  } catch (error) {
    return { error: error.message };
  }
}

function tsvisorPlatforms() {
  const listing = spawnSync(process.execPath, [runscCli, 'platforms'], { encoding: 'utf8' });
  const names = [];
  const lines = listing.stdout.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const name = lines[i].match(/^(\S+)\s/);
    if (name && lines[i + 1].trim() === 'available') names.push(name[1]);
  }
  return names;
}

const configurations = [{ label: 'native', prefix: ['env'] }];
for (const platform of tsvisorPlatforms()) {
  configurations.push({ label: `tsvisor ${platform}`, prefix: [process.execPath, runscCli, `--platform=${platform}`, 'do', '--'] });
}
const gvisor = fs.existsSync('/usr/bin/runsc') ? '/usr/bin/runsc' : undefined;
configurations.push({
  label: 'gVisor runsc ptrace',
  prefix: gvisor ? [gvisor, '--platform=ptrace', '--network=none', 'do'] : undefined,
});

console.log(`whole programs, best of ${runs} runs, ${os.cpus().length} CPUs, Linux ${os.release()}`);
for (const workload of workloads) {
  const results = configurations.map((configuration) => ({
    label: configuration.label,
    ...(configuration.prefix ? measure(configuration.prefix, workload.argv) : { error: 'not installed (apt-get install runsc)' }),
  }));
  const nativeSeconds = results[0].seconds;
  const gvisorSeconds = results[results.length - 1].seconds;

  console.log(`\n${workload.label}: ${workload.argv.join(' ')}`);
  console.log(`${'configuration'.padEnd(24)}${'ms'.padStart(10)}${'× native'.padStart(10)}${'× gVisor'.padStart(10)}`);
  for (const r of results) {
    if (r.error) {
      console.log(`${r.label.padEnd(24)}  failed: ${r.error}`);
      continue;
    }
    const vsNative = nativeSeconds ? (r.seconds / nativeSeconds).toFixed(1) : '-';
    const vsGvisor = gvisorSeconds ? (r.seconds / gvisorSeconds).toFixed(2) : '-';
    console.log(`${r.label.padEnd(24)}${(r.seconds * 1e3).toFixed(0).padStart(10)}${vsNative.padStart(10)}${vsGvisor.padStart(10)}`);
  }
}
