#!/usr/bin/env node
// System call round trip: a static program making N getpid calls, run natively, under tsvisor on
// every platform that can run here, and under gVisor's runsc (Debian package `runsc`) in the same
// run. Each configuration runs with 0 and with N calls; the difference divided by N is the cost of
// one call, so start-up costs cancel out. The best of several runs is kept.
//
//   node bench/syscall-roundtrip.mjs [--calls=N] [--runs=R]

import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const runscCli = path.join(here, '..', 'packages', 'runsc', 'bin', 'runsc.js');
const options = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=')));
const calls = Number(options.calls ?? 100000);
const runs = Number(options.runs ?? 3);

function which(program) {
  const found = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

function buildProgram() {
  // Not under /tmp: runsc mounts a tmpfs there, which would hide the program from the sandbox.
  const dir = fs.mkdtempSync(path.join('/var/tmp', 'tsvisor-bench-'));
  const binary = path.join(dir, 'getpid');
  execFileSync('gcc', ['-O2', '-static', '-o', binary, path.join(here, 'getpid.c')]);
  return { dir, binary };
}

function timeOnce(command, args) {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status}: ${result.stderr.trim().split('\n').pop()}`);
  }
  return seconds;
}

function best(command, args) {
  let min = Infinity;
  for (let i = 0; i < runs; i++) min = Math.min(min, timeOnce(command, args));
  return min;
}

function measure(label, prefix, binary) {
  try {
    const idle = best(prefix[0], [...prefix.slice(1), binary, '0']);
    const busy = best(prefix[0], [...prefix.slice(1), binary, String(calls)]);
    return { label, perCallUs: ((busy - idle) / calls) * 1e6, startupMs: idle * 1e3 };
  } catch (error) {
    return { label, error: error.message };
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

const { dir, binary } = buildProgram();
const results = [measure('native', ['env'], binary)];
for (const platform of tsvisorPlatforms()) {
  results.push(measure(`tsvisor ${platform}`, [process.execPath, runscCli, `--platform=${platform}`, 'do', '--'], binary));
}
const gvisor = which('runsc') && fs.existsSync('/usr/bin/runsc') ? '/usr/bin/runsc' : undefined;
if (gvisor) {
  results.push(measure('gVisor runsc ptrace', [gvisor, '--platform=ptrace', '--network=none', 'do'], binary));
} else {
  results.push({ label: 'gVisor runsc ptrace', error: 'not installed (apt-get install runsc)' });
}
fs.rmSync(dir, { recursive: true, force: true });

const nativeUs = results[0].perCallUs;
const gvisorUs = results.find((r) => r.label.startsWith('gVisor'))?.perCallUs;
console.log(`getpid round trip, ${calls} calls, best of ${runs} runs, ${os.cpus().length} CPUs, Linux ${os.release()}`);
console.log(`${'configuration'.padEnd(24)}${'µs/call'.padStart(10)}${'× native'.padStart(10)}${'× gVisor'.padStart(10)}${'start-up ms'.padStart(13)}`);
for (const r of results) {
  if (r.error) {
    console.log(`${r.label.padEnd(24)}  failed: ${r.error}`);
    continue;
  }
  const vsNative = (r.perCallUs / nativeUs).toFixed(1);
  const vsGvisor = gvisorUs ? (r.perCallUs / gvisorUs).toFixed(2) : '-';
  console.log(`${r.label.padEnd(24)}${r.perCallUs.toFixed(2).padStart(10)}${vsNative.padStart(10)}${vsGvisor.padStart(10)}${r.startupMs.toFixed(0).padStart(13)}`);
}
