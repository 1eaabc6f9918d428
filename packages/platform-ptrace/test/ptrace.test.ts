import * as assert from 'uvu/assert';
import { suite } from 'uvu';
import * as fs from 'node:fs';
import { Access, Reg, SwitchKind, createPlatform, lookupPlatform } from '@tsvisor/platform-api';
import '../src/index.js';
import type { PtraceAddressSpace, PtracePlatform } from '../src/index.js';
import { ScratchFile, freshRegisters } from '@tsvisor/platform-api/testing';
import { CODE, DATA, PAGE, mapsOf, threadsOf } from './helpers.js';

// Machine code used below.
const syscall = [0x0f, 0x05];
const spin = [0xeb, 0xfe];
const hlt = [0xf4];
const loadRaxFromRbx = [0x48, 0x8b, 0x03];
const movqRaxXmm0 = [0x66, 0x48, 0x0f, 0x7e, 0xc0];

interface Fixture {
  platform: PtracePlatform;
  file: ScratchFile;
}

const test = suite<Fixture>('ptrace platform', {} as Fixture);

test.before.each((fx) => {
  fx.platform = createPlatform('ptrace') as PtracePlatform;
  fx.file = new ScratchFile(16 * PAGE);
});

test.after.each((fx) => {
  fx.platform.close();
  fx.file.close();
});

test('probe reports ptrace available', () => {
  const { descriptor } = lookupPlatform('ptrace');
  const result = descriptor.probe();
  assert.is(result.available, true);
  assert.is(result.reason, '');
});

test('stub starts with only its own page', ({ platform }) => {
  const as = platform.newAddressSpace();
  const maps = mapsOf(as.pid).filter((line) => !line.includes('[vsyscall]'));
  assert.is(maps.length, 1, maps.join('\n'));
  assert.ok(maps[0].startsWith(`${platform.maxUserAddress.toString(16)}-`), maps[0]);
  assert.ok(maps[0].includes(' r-xp '), 'the stub page is not writable');
  assert.equal(fs.readdirSync(`/proc/${as.pid}/fd`), [], 'the stub inherits no descriptor');
});

test('stub runs in its own session', ({ platform }) => {
  const as = platform.newAddressSpace();
  const stat = fs.readFileSync(`/proc/${as.pid}/stat`, 'utf8');
  const [, , processGroup, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  assert.is(session, as.pid);
  assert.is(processGroup, as.pid);
});

test('mapped file is opened once per stub', ({ platform, file }) => {
  const as = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  as.mapFile(DATA, file, PAGE, 2 * PAGE, Access.Read | Access.Write);
  assert.is(fs.readdirSync(`/proc/${as.pid}/fd`).length, 1);
  const maps = mapsOf(as.pid);
  assert.ok(maps.some((line) => line.startsWith('10000000-10001000 r-xs ')), maps.join('\n'));
  assert.ok(maps.some((line) => line.startsWith('20000000-20002000 rw-s 00001000 ')), maps.join('\n'));
});

test('mapFile rejects bad arguments', ({ platform, file }) => {
  const as = platform.newAddressSpace();
  assert.throws(() => as.mapFile(CODE + 1, file, 0, PAGE, Access.Read), /addr must be a non-negative multiple of 4096/);
  assert.throws(() => as.mapFile(CODE, file, 100, PAGE, Access.Read), /offset must be/);
  assert.throws(() => as.mapFile(platform.maxUserAddress, file, 0, PAGE, Access.Read), /outside the user range/);
  assert.throws(() => as.mapFile(CODE, { fd: -1 }, 0, PAGE, Access.Read), /file.fd must be an open descriptor/);
  assert.throws(() => as.mapFile(CODE, file, 0, PAGE, 8), /access must combine/);
});

test('mapFile of a bad descriptor names the call', ({ platform }) => {
  const as = platform.newAddressSpace();
  assert.throws(() => as.mapFile(CODE, { fd: 987654 }, 0, PAGE, Access.Read), /fstat of descriptor 987654 failed: EBADF/);
});

test('fault on inaccessible page reports Read', async ({ platform, file }) => {
  file.write(0, loadRaxFromRbx);
  const as = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  as.mapFile(DATA, file, PAGE, PAGE, Access.None);
  const ctx = platform.newContext();
  const regs = freshRegisters(CODE);
  regs.rbx = DATA + 16;
  assert.is(await ctx.switch(as, regs), SwitchKind.Fault);
  assert.is(ctx.faultAddress, DATA + 16);
  assert.is(ctx.faultAccess, Access.Read);
});

test('privileged instruction is a signal, not a fault', async ({ platform, file }) => {
  file.write(0, hlt);
  const as = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  const ctx = platform.newContext();
  assert.is(await ctx.switch(as, freshRegisters(CODE)), SwitchKind.Signal);
  const info = new DataView(ctx.signalInfo.buffer);
  assert.is(info.getInt32(0, true), 11, 'SIGSEGV');
  assert.is(info.getInt32(8, true), 0x80, 'si_code SI_KERNEL');
});

test('interrupt before a switch returns Interrupted at once', async ({ platform, file }) => {
  file.write(0, syscall);
  const as = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  const ctx = platform.newContext();
  const regs = freshRegisters(CODE);
  ctx.interrupt();
  assert.is(await ctx.switch(as, regs), SwitchKind.Interrupted);
  assert.is(regs.rip, CODE, 'no instruction ran');
  assert.is(await ctx.switch(as, regs), SwitchKind.Syscall);
});

test('changed SSE state in the buffer reaches the thread', async ({ platform, file }) => {
  file.write(0, [...syscall, ...movqRaxXmm0, ...syscall]);
  const as = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  const ctx = platform.newContext();
  const regs = freshRegisters(CODE);
  assert.is(await ctx.switch(as, regs), SwitchKind.Syscall);
  new DataView(regs.buffer).setBigUint64(regs.xmm(0).byteOffset, 0x0123456789abcdefn, true);
  assert.is(await ctx.switch(as, regs), SwitchKind.Syscall);
  assert.is(regs.getBig(80), 0x0123456789abcdefn);
});

test('context release ends its stub thread', async ({ platform, file }) => {
  file.write(0, syscall);
  const as = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  const ctx = platform.newContext();
  assert.is(await ctx.switch(as, freshRegisters(CODE)), SwitchKind.Syscall);
  assert.is(threadsOf(as.pid).length, 2);
  ctx.release();
  assert.equal(threadsOf(as.pid), [as.pid]);
});

test('release during a switch resolves it as Interrupted', async ({ platform, file }) => {
  file.write(0, spin);
  const as = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  const ctx = platform.newContext();
  const running = ctx.switch(as, freshRegisters(CODE));
  assert.instance(running, Promise);
  await new Promise((resolve) => setTimeout(resolve, 20));
  ctx.release();
  assert.is(await running, SwitchKind.Interrupted);
  assert.equal(threadsOf(as.pid), [as.pid]);
});

test('killed stub makes the switch fail with the cause', async ({ platform, file }) => {
  file.write(0, spin);
  const as = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  const ctx = platform.newContext();
  const running = ctx.switch(as, freshRegisters(CODE));
  process.kill(as.pid, 'SIGKILL');
  try {
    await running;
    assert.unreachable('the switch should have failed');
  } catch (error) {
    assert.match((error as Error).message, /stub thread ended during a switch: thread \d+ was killed by signal 9/);
  }
});

test('invalid selectors make switch fail clearly', ({ platform, file }) => {
  file.write(0, syscall);
  const as = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  const ctx = platform.newContext();
  const regs = freshRegisters(CODE);
  regs.set(Reg.cs, 0);
  assert.throws(() => ctx.switch(as, regs), /PTRACE_SETREGS of stub thread \d+ \(invalid cs, ss or segment selector\? .*\) failed: EIO/);
});

test('switch into a released address space is an error', async ({ platform, file }) => {
  const as: PtraceAddressSpace = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  const ctx = platform.newContext();
  as.release();
  assert.throws(() => ctx.switch(as, freshRegisters(CODE)), /address space \(stub process \d+\) has been released/);
});

test.run();
