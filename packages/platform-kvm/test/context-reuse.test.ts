/**
 * Contexts share the platform's vCPUs, and KVM keeps every vCPU until the VM is closed. These tests
 * create far more contexts than a VM has vCPU blocks, and check that a vCPU carries nothing of one
 * context into the next.
 */
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { suite } from 'uvu';
import { Access, createPlatform, Reg, Registers, SwitchKind, type AddressSpace, type Context, type Platform } from '@tsvisor/platform-api';
import { ScratchFile } from '../../platform-api/src/conformance/host.js';
import '../src/index.js';

const PAGE = 4096;
const CODE = 0x10000000;
const DATA = CODE + 0x10000;
const MARKER = 0x5eed_1234_abcd;

// VCPU_MAX of native/guest_layout.h: (GUEST_PAGE_POOL_GPA - GUEST_VCPU_BLOCKS_GPA) / VCPU_BLOCK_SIZE.
const VCPU_MAX = (0x400000 - 0x10000) / 0x8000;

const code = {
  syscall: [0x0f, 0x05],
  /** mov rax, fs:[0] */
  loadFs: [0x64, 0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00],
  /** movq xmm0, rbx */
  rbxToXmm0: [0x66, 0x48, 0x0f, 0x6e, 0xc3],
  /** movq rax, xmm0 */
  xmm0ToRax: [0x66, 0x48, 0x0f, 0x7e, 0xc0],
  /** jmp $ */
  spin: [0xeb, 0xfe],
};

// Entry points in the code page.
const MARK = CODE; // movq xmm0, rbx; mov rax, fs:[0]; syscall
const READ_XMM0 = CODE + 64; // movq rax, xmm0; syscall
const READ_FS = CODE + 128; // mov rax, fs:[0]; syscall
const SPIN = CODE + 192;

/** General registers the application owns, besides rax, rcx and r11, which a system call changes. */
const GPRS = ['rbx', 'rdx', 'rsi', 'rdi', 'rbp', 'r8', 'r9', 'r10', 'r12', 'r13', 'r14', 'r15'] as const;

interface Fixture {
  platform: Platform;
  file: ScratchFile;
  spaces: AddressSpace[];
}

const test = suite<Fixture>('kvm context reuse', {} as Fixture);

test.before.each((fx) => {
  fx.platform = createPlatform('kvm');
  fx.file = new ScratchFile(2 * PAGE);
  fx.file.write(0, code.rbxToXmm0, code.loadFs, code.syscall);
  fx.file.write(64, code.xmm0ToRax, code.syscall);
  fx.file.write(128, code.loadFs, code.syscall);
  fx.file.write(192, code.spin);
  fx.file.writeU64(PAGE, BigInt(MARKER));
  fx.spaces = [fx.platform.newAddressSpace(), fx.platform.newAddressSpace()];
  for (const as of fx.spaces) {
    as.mapFile(CODE, fx.file, 0, PAGE, Access.Read | Access.Execute);
    as.mapFile(DATA, fx.file, PAGE, PAGE, Access.Read | Access.Write);
  }
});

test.after.each((fx) => {
  fx.platform.close();
  fx.file.close();
});

function registersAt(rip: number): Registers {
  const regs = new Registers();
  regs.reset();
  regs.rip = rip;
  regs.rsp = DATA + PAGE;
  return regs;
}

/** Runs MARK with fs_base at the marker page and every general register set to a marker. */
async function dirty(ctx: Context, as: AddressSpace, seed: number): Promise<void> {
  const regs = registersAt(MARK);
  regs.setBig(Reg.fs_base, BigInt(DATA));
  regs.setBig(Reg.gs_base, BigInt(DATA));
  for (let i = 0; i < GPRS.length; i++) regs[GPRS[i]] = seed + i;
  assert.is(await ctx.switch(as, regs), SwitchKind.Syscall, 'marking run');
  assert.is(regs.rax, MARKER, 'the marking run read through its fs_base');
}

/** Checks that a context sees exactly the registers it passed, and no fs_base or xmm0 of another. */
async function assertClean(ctx: Context, as: AddressSpace, label: string): Promise<void> {
  const regs = registersAt(READ_XMM0);
  assert.is(await ctx.switch(as, regs), SwitchKind.Syscall, `${label}: kind`);
  assert.is(regs.rax, 0, `${label}: xmm0 is zero`);
  for (const name of GPRS) assert.is(regs[name], 0, `${label}: ${name}`);
  assert.is(regs.getBig(Reg.fs_base), 0n, `${label}: fs_base`);
  assert.is(regs.getBig(Reg.gs_base), 0n, `${label}: gs_base`);

  const load = registersAt(READ_FS);
  assert.is(await ctx.switch(as, load), SwitchKind.Fault, `${label}: fs:[0] faults with fs_base 0`);
  assert.is(ctx.faultAddress, 0, `${label}: fault address`);
  assert.is(ctx.faultAccess, Access.Read, `${label}: fault access`);
}

function hostThreads(): number {
  return fs.readdirSync('/proc/self/task').length;
}

function hostDescriptors(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

test('reused context sees no earlier state', async ({ platform, spaces }) => {
  const first = platform.newContext();
  await dirty(first, spaces[0], 0x1000);
  first.release();

  // The same address space keeps CR3 unchanged, so only a real reset clears fs_base.
  const second = platform.newContext();
  await assertClean(second, spaces[0], 'same address space');
  await dirty(second, spaces[0], 0x2000);
  second.release();

  const third = platform.newContext();
  await assertClean(third, spaces[1], 'other address space');
  third.release();
});

test('more contexts than vCPUs, one after another', async ({ platform, spaces }) => {
  const warm = platform.newContext();
  await dirty(warm, spaces[0], 0x100);
  warm.release();
  const threads = hostThreads();
  const descriptors = hostDescriptors();

  for (let i = 0; i < 2 * VCPU_MAX + 10; i++) {
    const ctx = platform.newContext();
    const as = spaces[i % 2];
    await assertClean(ctx, as, `context ${i}`);
    await dirty(ctx, as, i * 0x100);
    ctx.release();
  }
  assert.is(hostThreads(), threads, 'no host thread per released context');
  assert.is(hostDescriptors(), descriptors, 'no descriptor per released context');
});

test('interleaved contexts stay separate', async ({ platform, spaces }) => {
  const live: Context[] = [];
  for (let round = 0; round < VCPU_MAX + 20; round++) {
    // Keep three to five contexts alive, releasing the oldest and a middle one in turn.
    while (live.length < 5) {
      const ctx = platform.newContext();
      await assertClean(ctx, spaces[live.length % 2], `round ${round}, new context`);
      live.push(ctx);
    }
    for (let i = 0; i < live.length; i++) await dirty(live[i], spaces[i % 2], round * 0x10000 + i * 0x100);
    live.shift()!.release();
    live.splice(round % live.length, 1)[0].release();
  }
  for (const ctx of live) ctx.release();
});

test('context released during a switch is reusable', async ({ platform, spaces }) => {
  const spinning = platform.newContext();
  const regs = registersAt(SPIN);
  regs.setBig(Reg.fs_base, BigInt(DATA));
  regs.r12 = 0x7777;
  const pending = spinning.switch(spaces[0], regs);
  assert.instance(pending, Promise, 'the spinning switch is pending');
  spinning.release();
  await (pending as Promise<SwitchKind>).then(
    () => assert.unreachable('a released context resolved its switch'),
    (error: Error) => assert.match(error.message, 'released'),
  );

  const next = platform.newContext();
  await assertClean(next, spaces[0], 'after a released switch');
  next.release();
});

test('close frees parked vCPUs', async ({ file }) => {
  const threads = hostThreads();
  const descriptors = hostDescriptors();
  const platform = createPlatform('kvm');
  const as = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  as.mapFile(DATA, file, PAGE, PAGE, Access.Read | Access.Write);
  const contexts = [platform.newContext(), platform.newContext(), platform.newContext()];
  for (const ctx of contexts) await dirty(ctx, as, 0x300);
  for (const ctx of contexts) ctx.release();
  assert.ok(hostThreads() > threads, 'parked vCPUs keep their threads until close');

  platform.close();
  // A joined thread's task entry can outlive pthread_join briefly.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.is(hostThreads(), threads, 'host threads left behind');
  assert.is(hostDescriptors(), descriptors, 'descriptors left behind');
});

test.run();
