/**
 * Platform failures during a switch. A platform built on a real one throws from its switch: an
 * error that reports a stub the program destroyed must end the program as if it died of the
 * error's signal, and any other error must end runSandbox with a one-line SandboxError that names
 * the platform.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createPlatform, registerPlatform,
  type AddressSpace, type Context, type Platform, type Registers, type SwitchKind,
} from '@tsvisor/platform-api';
import { runSandbox, SandboxError } from '../src/index.js';
import { testPlatforms } from './helpers/host.js';

const BUSYBOX = '/usr/bin/busybox';
const SIGSYS = 31;

/** The error the wrapped context throws on its SWITCHES_BEFORE_FAILURE-th switch. */
let failure: (() => Error) | undefined;

const SWITCHES_BEFORE_FAILURE = 5;

function failingContext(inner: Context): Context {
  let switches = 0;
  return {
    get faultAddress() {
      return inner.faultAddress;
    },
    get faultAccess() {
      return inner.faultAccess;
    },
    get signalInfo() {
      return inner.signalInfo;
    },
    switch(as: AddressSpace, regs: Registers): SwitchKind | Promise<SwitchKind> {
      if (++switches === SWITCHES_BEFORE_FAILURE && failure !== undefined) throw failure();
      return inner.switch(as, regs);
    },
    interrupt: () => inner.interrupt(),
    release: () => inner.release(),
  };
}

/**
 * Registers the test platform. It is registered when the suite starts rather than when the file
 * loads, so suites that list the platforms as they load never run on it.
 */
function registerFailingPlatform(): void {
  registerPlatform({
    name: 'failing-switch',
    description: 'a real platform whose switch throws a chosen error; for tests only',
    rank: () => 0,
    probe: () => ({ available: true, reason: '' }),
    create: (): Platform => {
      const inner = createPlatform(testPlatforms()[0]);
      return {
        name: 'failing-switch',
        supports: inner.supports,
        minUserAddress: inner.minUserAddress,
        maxUserAddress: inner.maxUserAddress,
        newAddressSpace: () => inner.newAddressSpace(),
        newContext: () => failingContext(inner.newContext()),
        close: () => inner.close(),
      };
    },
  });
}

const test = suite('platform errors during a switch');

test.before(() => {
  registerFailingPlatform();
});

test.after(() => {
  failure = undefined;
});

test('destroyed stub kills with its signal', async () => {
  failure = () => Object.assign(new Error('test: the sandboxed program destroyed its stub (killed by signal SYS)'), {
    code: 'ERR_TSVISOR_STUB_DESTROYED',
    signal: SIGSYS,
  });
  const result = await runSandbox({ argv: [BUSYBOX, 'true'], platform: 'failing-switch', stdio: [] });
  assert.is(result.status, 128 + SIGSYS);
  assert.is(result.signal, SIGSYS);
});

test('other switch error is one line', async () => {
  failure = () => new Error('test: the vCPU thread vanished\n    at native code');
  let message = '';
  try {
    await runSandbox({ argv: [BUSYBOX, 'true'], platform: 'failing-switch', stdio: [] });
  } catch (error) {
    assert.instance(error, SandboxError);
    message = (error as Error).message;
  }
  assert.is(message, 'platform failing-switch failed to run the program: test: the vCPU thread vanished');
});

test('program runs when switches succeed', async () => {
  failure = undefined;
  const result = await runSandbox({ argv: [BUSYBOX, 'sh', '-c', 'exit 6'], platform: 'failing-switch', stdio: [] });
  assert.is(result.status, 6);
});

test.run();
