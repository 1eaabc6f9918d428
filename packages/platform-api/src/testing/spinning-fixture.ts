/**
 * A child Node process that keeps one context spinning, for tests of what a platform leaves behind
 * when Node is killed or exits without releasing anything.
 *
 * The fixture script calls runSpinningFixture with its platform. It prints one JSON line with the
 * pid of the host process that runs the application code, `{"stub":PID}`. In "hold" mode it then
 * keeps Node alive until it is killed. In "leave" mode it interrupts the switch after 10 ms, prints
 * `{"kind":KIND}` with the switch's result, and leaves the platform, address space and context
 * unreleased, so Node must be able to exit by itself. The test side starts the script with
 * startHoldingFixture or runLeavingFixture, which run it with `node --import tsx`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import type { AddressSpace, Platform } from '../platform.js';
import { Access } from '../platform.js';
import { ScratchFile } from '../conformance/host.js';
import { freshRegisters } from './registers.js';

const PAGE = 4096;
const CODE = 0x10000000;
const JUMP_TO_SELF = [0xeb, 0xfe];
const INTERRUPT_AFTER_MS = 10;
const LEAVING_TIMEOUT_MS = 30_000;
const NODE_ARGS = ['--import', 'tsx'];

export interface SpinningFixtureOptions {
  /** The platform under test. The fixture never closes it. */
  readonly platform: Platform;
  /** Returns the pid of the host process that runs `as`'s application code. */
  readonly stubPid: (as: AddressSpace) => number;
  /** "hold" or "leave", as the test side passes it in process.argv[2]. */
  readonly mode: string;
}

/** Runs the fixture script's side: starts the spinning context and holds or leaves it. */
export function runSpinningFixture(options: SpinningFixtureOptions): void {
  const { platform, stubPid, mode } = options;
  if (mode !== 'hold' && mode !== 'leave') {
    throw new TypeError(`runSpinningFixture: mode must be "hold" or "leave", not ${JSON.stringify(mode)}`);
  }

  const file = new ScratchFile(PAGE);
  file.write(0, JUMP_TO_SELF);
  const as = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  const ctx = platform.newContext();

  const running = ctx.switch(as, freshRegisters(CODE));
  console.log(JSON.stringify({ stub: stubPid(as) }));

  if (mode === 'hold') {
    setInterval(() => {}, 1000);
    return;
  }
  setTimeout(() => ctx.interrupt(), INTERRUPT_AFTER_MS);
  void Promise.resolve(running).then((kind) => console.log(JSON.stringify({ kind })));
}

/**
 * Starts `fixture` in "hold" mode and resolves once it has printed its stub's pid. The caller
 * owns the child and must kill it.
 */
export async function startHoldingFixture(fixture: string): Promise<{ child: ChildProcess; stub: number }> {
  const child = spawn(process.execPath, [...NODE_ARGS, fixture, 'hold'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('\n')) resolve(output.split('\n')[0]);
    });
    child.on('exit', (code) => reject(new Error(`the fixture exited with ${code} before printing`)));
  });
  const { stub } = JSON.parse(line) as { stub: number };
  return { child, stub };
}

/**
 * Runs `fixture` in "leave" mode until Node exits by itself, and returns the stub's pid and the
 * kind of exit the interrupted switch reported. Throws if Node did not exit by itself within 30
 * seconds or exited with a non-zero status.
 */
export function runLeavingFixture(fixture: string): { stub: number; kind: number } {
  const result = spawnSync(process.execPath, [...NODE_ARGS, fixture, 'leave'], {
    encoding: 'utf8',
    timeout: LEAVING_TIMEOUT_MS,
  });
  if (result.signal !== null) {
    throw new Error(`Node did not exit by itself: the fixture was ended with ${result.signal}`);
  }
  if (result.status !== 0) {
    throw new Error(`the fixture failed with status ${result.status}: ${result.stderr}`);
  }

  const [first, second] = result.stdout.split('\n');
  const { stub } = JSON.parse(first) as { stub: number };
  const { kind } = JSON.parse(second) as { kind: number };
  return { stub, kind };
}
