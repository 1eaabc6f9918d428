#!/usr/bin/env node
// Runs every package's tests one package at a time through lerna, echoes their output, and ends
// with one summary line, "N passed, N failed", added up from the uvu reports of all packages.
import { spawn } from 'node:child_process';

const child = spawn('npx', ['lerna', 'run', 'test', '--concurrency', '1', '--stream'], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, NX_DAEMON: 'false' },
});

const totals = { passed: 0, total: 0, skipped: 0 };
let pending = '';
const ansi = /\x1b\[[0-9;]*m/g;

function scan(line) {
  const plain = line.replace(ansi, '');
  const match = plain.match(/(Total|Passed|Skipped):\s+(\d+)\s*$/);
  if (match) totals[match[1].toLowerCase()] += Number(match[2]);
}

child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  pending += chunk.toString('utf8');
  const lines = pending.split('\n');
  pending = lines.pop();
  for (const line of lines) scan(line);
});

// 'exit' rather than 'close': a stray grandchild that kept the pipe open must not hang the run.
child.on('exit', (code, signal) => {
  if (pending) scan(pending);
  const failed = Math.max(0, totals.total - totals.passed - totals.skipped);
  const status = code ?? (signal ? 1 : 0);
  const failedReported = status !== 0 && failed === 0 ? 1 : failed;
  process.stdout.write(`\n${totals.passed} passed, ${failedReported} failed, ${totals.skipped} skipped\n`);
  process.exit(status);
});
