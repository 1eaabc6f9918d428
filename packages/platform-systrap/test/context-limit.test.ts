/**
 * systrap gives every context a stub thread slot in each address space it runs in, so newContext
 * raises PlatformLimitError once the live contexts fill one address space's slots. These tests
 * check the limit, that the platform stays usable after it, and that an address space runs 1000
 * threads at once.
 */
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { createPlatform, isPlatformLimitError, PLATFORM_LIMIT, SwitchKind, type Context } from '@tsvisor/platform-api';
import { freshRegisters } from '@tsvisor/platform-api/testing';
import { loadNative } from '../src/native.js';
import { CODE, withCode } from './helpers.js';

const SYSCALL = [0x0f, 0x05];

test('address space has 4096 thread slots', () => {
  assert.is(loadNative().maxThreadsPerAddressSpace, 4096);
});

test('newContext raises PlatformLimitError at maxContexts', async () => {
  const { platform: codePlatform, file } = withCode(SYSCALL);
  const platform = createPlatform('systrap', { maxContexts: 3 });
  const live = [platform.newContext(), platform.newContext(), platform.newContext()];

  let raised: unknown;
  try {
    platform.newContext();
  } catch (error) {
    raised = error;
  }
  assert.ok(isPlatformLimitError(raised), `expected a PlatformLimitError, got ${String(raised)}`);
  assert.is((raised as { code: string }).code, PLATFORM_LIMIT);
  assert.match((raised as Error).message, /3 are live, the maximum set by maxContexts/);

  live.pop()!.release();
  const replacement = platform.newContext();
  const space = platform.newAddressSpace();
  space.mapFile(CODE, file, 0, 4096, 5);
  const regs = freshRegisters(CODE);
  regs.rax = 39;
  assert.is(await replacement.switch(space, regs), SwitchKind.Syscall, 'the replacement context runs');
  assert.is(regs.orig_rax, 39);

  platform.close();
  codePlatform.close();
  file.close();
});

test('invalid maxContexts is rejected', () => {
  assert.throws(() => createPlatform('systrap', { maxContexts: 0 }), /maxContexts must be an integer between 1 and 4096, got 0/);
  assert.throws(() => createPlatform('systrap', { maxContexts: 5000 }), /between 1 and 4096, got 5000/);
});

test('1000 contexts run in one address space', async () => {
  const { platform, as, file } = withCode(SYSCALL);
  const contexts: Context[] = [];
  for (let i = 0; i < 1000; i++) {
    const ctx = platform.newContext();
    contexts.push(ctx);
    const regs = freshRegisters(CODE);
    regs.rax = 1000 + i;
    assert.is(await ctx.switch(as, regs), SwitchKind.Syscall, `context ${i}`);
    assert.is(regs.orig_rax, 1000 + i, `context ${i} system call number`);
  }
  platform.close();
  file.close();
});

test.run();
