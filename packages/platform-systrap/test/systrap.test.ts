import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { createPlatform, listPlatforms, SwitchKind } from '@tsvisor/platform-api';
import { freshRegisters, isAlive } from '@tsvisor/platform-api/testing';
import { CODE, PAGE, withCode } from './helpers.js';

const SYSCALL = [0x0f, 0x05];
const SPIN = [0xeb, 0xfe];
const SYS_URETPROBE = 335;

test('registry lists systrap as available', () => {
  const listing = listPlatforms().find((p) => p.name === 'systrap');
  assert.ok(listing, 'systrap is registered');
  assert.is(listing.reason, '');
  assert.is(listing.available, true);
  assert.is(listing.rank, 20);
});

test('uretprobe system call reaches the sentry', async () => {
  const { platform, as, file } = withCode([...SYSCALL, ...SPIN]);
  const ctx = platform.newContext();
  const regs = freshRegisters(CODE);
  regs.rax = SYS_URETPROBE;
  assert.is(await ctx.switch(as, regs), SwitchKind.Syscall);
  assert.is(regs.orig_rax, SYS_URETPROBE);
  assert.is(regs.rip, CODE + SYSCALL.length);
  platform.close();
  file.close();
});

test('store to unmapped page reports exact write access', async () => {
  // mov [rbx], rax
  const { platform, as, file } = withCode([0x48, 0x89, 0x03]);
  const ctx = platform.newContext();
  const regs = freshRegisters(CODE);
  regs.rbx = 0x30000008;
  assert.is(await ctx.switch(as, regs), SwitchKind.Fault);
  assert.is(ctx.faultAddress, 0x30000008);
  assert.is(ctx.faultAccess, 2);
  platform.close();
  file.close();
});

test('killed stub rejects the switch with the cause', async () => {
  const { platform, as, file } = withCode(SPIN);
  const ctx = platform.newContext();
  const running = ctx.switch(as, freshRegisters(CODE));
  assert.instance(running, Promise);
  process.kill(as.pid, 'SIGKILL');
  try {
    await running;
    assert.unreachable('the switch resolved although the stub died');
  } catch (error) {
    assert.match((error as Error).message, /killed by signal KILL/);
  }
  platform.close();
  file.close();
});

test('release ends the stub process', async () => {
  const { platform, as, file } = withCode([...SYSCALL, ...SPIN]);
  const ctx = platform.newContext();
  assert.is(await ctx.switch(as, freshRegisters(CODE)), SwitchKind.Syscall);
  const pid = as.pid;
  assert.ok(isAlive(pid), 'the stub runs before release');
  ctx.release();
  as.release();
  assert.not.ok(isAlive(pid), `stub process ${pid} outlived release`);
  platform.close();
  file.close();
});

test('interrupt before a switch makes it return Interrupted', async () => {
  const { platform, as, file } = withCode(SPIN);
  const ctx = platform.newContext();
  const regs = freshRegisters(CODE);
  ctx.interrupt();
  assert.is(await ctx.switch(as, regs), SwitchKind.Interrupted);
  platform.close();
  file.close();
});

test('mapping outside the user range is rejected', () => {
  const { platform, as, file } = withCode(SPIN);
  assert.throws(() => as.mapFile(platform.maxUserAddress, file, 0, PAGE, 1), /outside the user range/);
  assert.throws(() => as.mapFile(CODE + 1, file, 0, PAGE, 1), /multiples of 4096/);
  platform.close();
  file.close();
});

test('invalid spin option is rejected', () => {
  assert.throws(() => createPlatform('systrap', { spinMicroseconds: -1 }), /spinMicroseconds must be a number of microseconds/);
});

test.run();
