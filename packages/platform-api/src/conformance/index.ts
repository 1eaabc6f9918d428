/**
 * The conformance suite every platform runs, first- or third-party:
 *
 *   import { runConformance } from '@tsvisor/platform-api/conformance';
 *   runConformance({ create: () => createPlatform('myplatform') });
 *
 * It drives the platform with small machine-code snippets placed in a temporary shared-memory file.
 * The tests check what the sentry relies on: system call arguments and results, faults with their
 * address and access type, exceptions as signals, interrupt(), unmap, and fs_base and SSE state
 * across switches. They also cover several contexts and address spaces, and check that close()
 * leaves no process, thread or descriptor.
 */
import * as assert from 'uvu/assert';
import { suite } from 'uvu';
import type { Platform } from '../platform.js';
import { Access, SwitchKind } from '../platform.js';
import { Registers } from '../registers.js';
import { hostResources, ScratchFile } from './host.js';
import { code } from './snippets.js';

export interface ConformanceOptions {
  /** Creates a fresh platform instance. Called once per test. */
  readonly create: () => Platform;
  /** Suite title; defaults to "conformance". */
  readonly name?: string;
}

const PAGE = 4096;
const CODE = 0x10000000;
const DATA = 0x20000000;
const UNMAPPED = 0x30000000;

const SIGILL = 4;
const SIGTRAP = 5;
const SIGFPE = 8;
const SIGSYS = 31;
const SYS_SECCOMP = 1;
const AUDIT_ARCH_I386 = 0x40000003;

interface Fixture {
  platform: Platform;
  file: ScratchFile;
}

async function run(ctx: ReturnType<Platform['newContext']>, as: ReturnType<Platform['newAddressSpace']>, regs: Registers): Promise<number> {
  return await ctx.switch(as, regs);
}

function freshRegisters(rip: number): Registers {
  const regs = new Registers();
  regs.reset();
  regs.rip = rip;
  return regs;
}

function signalNumber(info: Uint8Array): number {
  return new DataView(info.buffer, info.byteOffset, info.byteLength).getInt32(0, true);
}

/** Adds the conformance tests to a uvu suite and runs it. */
export function runConformance(options: ConformanceOptions): void {
  if (options === null || typeof options !== 'object' || typeof options.create !== 'function') {
    throw new TypeError('runConformance: pass { create: () => Platform }, for example { create: () => createPlatform("ptrace") }');
  }
  const test = suite<Fixture>(options.name ?? 'conformance', {} as Fixture);

  test.before.each((fx) => {
    fx.platform = options.create();
    fx.file = new ScratchFile(64 * PAGE);
  });
  test.after.each((fx) => {
    fx.platform.close();
    fx.file.close();
  });

  test('platform describes its address range', ({ platform }) => {
    assert.type(platform.name, 'string');
    assert.ok(platform.minUserAddress > 0, `minUserAddress ${platform.minUserAddress} is positive`);
    assert.ok(platform.minUserAddress <= CODE, `minUserAddress ${platform.minUserAddress} leaves room for the test code`);
    assert.ok(platform.maxUserAddress >= 0x7f0000000000, `maxUserAddress ${platform.maxUserAddress.toString(16)}`);
    assert.type(platform.supports.exactFaultAccess, 'boolean');
  });

  test('system call passes six arguments and takes the result', async ({ platform, file }) => {
    file.write(0, code.syscall, code.movRdiRax, code.syscall, code.spin);
    const as = platform.newAddressSpace();
    as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    const ctx = platform.newContext();
    const regs = freshRegisters(CODE);
    const args = [1, -1, 0x7ffd_1234_5678, 0xdead_beef, -4095, 2 ** 40 + 3];
    regs.rax = 39;
    [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9] = args;
    regs.r12 = 0x5151;

    assert.is(await run(ctx, as, regs), SwitchKind.Syscall);
    assert.is(regs.orig_rax, 39);
    assert.equal([regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9], args);
    assert.is(regs.rip, CODE + code.syscall.length);
    assert.is(regs.r12, 0x5151);

    regs.rax = 0x1234567;
    assert.is(await run(ctx, as, regs), SwitchKind.Syscall);
    assert.is(regs.rdi, 0x1234567);
    assert.is(regs.rip, CODE + code.syscall.length * 2 + code.movRdiRax.length);

    regs.rax = -2;
    regs.rip = CODE + code.syscall.length;
    assert.is(await run(ctx, as, regs), SwitchKind.Syscall);
    assert.is(regs.rdi, -2);
    ctx.release();
    as.release();
  });

  test('many system calls in a row', async ({ platform, file }) => {
    file.write(0, code.syscall, code.jmpBack(code.syscall.length));
    const as = platform.newAddressSpace();
    as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    const ctx = platform.newContext();
    const regs = freshRegisters(CODE);
    for (let i = 0; i < 2000; i++) {
      // Since Linux 6.11, uretprobe (335) and uprobe (336) bypass seccomp and are handled by the
      // host kernel before any filter runs, so no seccomp-based platform can intercept them.
      const nr = i === 335 || i === 336 ? 39 : i;
      regs.rax = nr;
      assert.is(await run(ctx, as, regs), SwitchKind.Syscall);
      assert.is(regs.orig_rax, nr);
    }
    ctx.release();
    as.release();
  });

  test('fault on unmapped page reports address and access', async ({ platform, file }) => {
    file.write(0, code.loadRaxFromRbx);
    file.write(PAGE, code.storeRaxToRbx);
    const as = platform.newAddressSpace();
    as.mapFile(CODE, file, 0, 2 * PAGE, Access.Read | Access.Execute);
    const ctx = platform.newContext();

    const load = freshRegisters(CODE);
    load.rbx = UNMAPPED + 0x10;
    assert.is(await run(ctx, as, load), SwitchKind.Fault);
    assert.is(ctx.faultAddress, UNMAPPED + 0x10);
    assert.is(ctx.faultAccess & Access.Write, 0, 'a load is not a write');
    assert.ok(ctx.faultAccess & Access.Read, 'a load reports Read');
    assert.is(load.rip, CODE, 'rip stays at the faulting instruction');

    const store = freshRegisters(CODE + PAGE);
    store.rbx = UNMAPPED + 0x28;
    assert.is(await run(ctx, as, store), SwitchKind.Fault);
    assert.is(ctx.faultAddress, UNMAPPED + 0x28);
    if (platform.supports.exactFaultAccess) assert.is(ctx.faultAccess & Access.Write, Access.Write, 'a store reports Write');
    assert.is(store.rip, CODE + PAGE);
    ctx.release();
    as.release();
  });

  test('write to read-only page faults as a write', async ({ platform, file }) => {
    file.write(0, code.storeRaxToRbx, code.syscall);
    const as = platform.newAddressSpace();
    as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    as.mapFile(DATA, file, 4 * PAGE, PAGE, Access.Read);
    const ctx = platform.newContext();
    const regs = freshRegisters(CODE);
    regs.rbx = DATA + 8;
    regs.rax = 77;
    assert.is(await run(ctx, as, regs), SwitchKind.Fault);
    assert.is(ctx.faultAddress, DATA + 8);
    assert.is(ctx.faultAccess & Access.Write, Access.Write);
    assert.is(file.readU64(4 * PAGE + 8), 0n, 'the store did not happen');

    as.mapFile(DATA, file, 4 * PAGE, PAGE, Access.Read | Access.Write);
    assert.is(await run(ctx, as, regs), SwitchKind.Syscall, 'the store succeeds once the page is writable');
    assert.is(file.readU64(4 * PAGE + 8), 77n, 'the store reached the file');
    ctx.release();
    as.release();
  });

  test('jump to no-exec page faults as an execute', async ({ platform, file }) => {
    file.write(0, code.jmpRbx);
    file.write(4 * PAGE, code.syscall);
    const as = platform.newAddressSpace();
    as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    as.mapFile(DATA, file, 4 * PAGE, PAGE, Access.Read | Access.Write);
    const ctx = platform.newContext();
    const regs = freshRegisters(CODE);
    regs.rbx = DATA;
    assert.is(await run(ctx, as, regs), SwitchKind.Fault);
    assert.is(ctx.faultAddress, DATA);
    assert.is(ctx.faultAccess & Access.Execute, Access.Execute);
    assert.is(regs.rip, DATA);
    ctx.release();
    as.release();
  });

  test('int3, ud2 and divide by zero raise SIGTRAP, SIGILL, SIGFPE', async ({ platform, file }) => {
    file.write(0, code.int3);
    file.write(64, code.ud2);
    file.write(128, code.divideByZero);
    const as = platform.newAddressSpace();
    as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    const ctx = platform.newContext();
    const cases: Array<[number, number]> = [[CODE, SIGTRAP], [CODE + 64, SIGILL], [CODE + 128, SIGFPE]];
    for (const [rip, signo] of cases) {
      const regs = freshRegisters(rip);
      assert.is(await run(ctx, as, regs), SwitchKind.Signal, `instruction at ${rip.toString(16)}`);
      assert.is(signalNumber(ctx.signalInfo), signo);
    }
    ctx.release();
    as.release();
  });

  test('int 0x80 raises SIGSYS, not a 64-bit call', async ({ platform, file }) => {
    file.write(0, code.int80, code.spin);
    const as = platform.newAddressSpace();
    as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    const ctx = platform.newContext();
    const regs = freshRegisters(CODE);
    // 20 is getpid on i386 and writev on x86-64.
    regs.rax = 20;
    regs.rbx = 1;

    assert.is(await run(ctx, as, regs), SwitchKind.Signal);
    const info = new DataView(ctx.signalInfo.buffer, ctx.signalInfo.byteOffset, ctx.signalInfo.byteLength);
    assert.is(info.getInt32(0, true), SIGSYS, 'si_signo');
    assert.is(info.getInt32(8, true), SYS_SECCOMP, 'si_code');
    assert.is(info.getBigUint64(16, true), BigInt(CODE + code.int80.length), 'si_call_addr is the address after int 0x80');
    assert.is(info.getInt32(24, true), 20, 'si_syscall is the 32-bit number');
    assert.is(info.getUint32(28, true), AUDIT_ARCH_I386, 'si_arch');
    assert.is(regs.rip, CODE + code.int80.length, 'rip points after int 0x80');
    assert.is(regs.rax, 20, 'rax keeps the system call number');
    assert.is(regs.rbx, 1);
    ctx.release();
    as.release();
  });

  test('interrupt ends a busy loop and keeps the event loop free', async ({ platform, file }) => {
    file.write(0, code.spin);
    const as = platform.newAddressSpace();
    as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    const ctx = platform.newContext();
    const regs = freshRegisters(CODE);

    for (let round = 0; round < 3; round++) {
      let timerRan = false;
      const timer = setTimeout(() => {
        timerRan = true;
        ctx.interrupt();
      }, 30);
      const kind = await run(ctx, as, regs);
      clearTimeout(timer);
      assert.ok(timerRan, 'a timer ran while the application was spinning');
      assert.is(kind, SwitchKind.Interrupted);
      assert.is(regs.rip, CODE, 'rip is still inside the loop');
    }
    ctx.release();
    as.release();
  });

  test('unmap takes effect and mapFile replaces', async ({ platform, file }) => {
    file.write(0, code.loadRaxFromRbx, code.syscall);
    file.writeU64(4 * PAGE, 0x1111n);
    file.writeU64(5 * PAGE, 0x2222n);
    const as = platform.newAddressSpace();
    as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    as.mapFile(DATA, file, 4 * PAGE, PAGE, Access.Read);
    const ctx = platform.newContext();

    const regs = freshRegisters(CODE);
    regs.rbx = DATA;
    assert.is(await run(ctx, as, regs), SwitchKind.Syscall);
    assert.is(regs.rax, 0x1111);

    as.mapFile(DATA, file, 5 * PAGE, PAGE, Access.Read);
    regs.rip = CODE;
    assert.is(await run(ctx, as, regs), SwitchKind.Syscall);
    assert.is(regs.rax, 0x2222);

    as.unmap(DATA, PAGE);
    regs.rip = CODE;
    assert.is(await run(ctx, as, regs), SwitchKind.Fault);
    assert.is(ctx.faultAddress, DATA);
    ctx.release();
    as.release();
  });

  test('fs_base survives switches', async ({ platform, file }) => {
    file.write(0, code.loadRaxFromFs0, code.syscall, code.jmpBack(code.loadRaxFromFs0.length + code.syscall.length));
    file.writeU64(4 * PAGE, 0x1122334455667788n);
    file.writeU64(5 * PAGE, 0x0a0b0c0dn);
    const as = platform.newAddressSpace();
    as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    as.mapFile(DATA, file, 4 * PAGE, 2 * PAGE, Access.Read);
    const first = platform.newContext();
    const second = platform.newContext();
    const a = freshRegisters(CODE);
    a.fs_base = DATA;
    const b = freshRegisters(CODE);
    b.fs_base = DATA + PAGE;

    for (let i = 0; i < 3; i++) {
      assert.is(await run(first, as, a), SwitchKind.Syscall);
      assert.is(a.getBig(80), 0x1122334455667788n);
      assert.is(a.fs_base, DATA);
      assert.is(await run(second, as, b), SwitchKind.Syscall);
      assert.is(b.rax, 0x0a0b0c0d);
      assert.is(b.fs_base, DATA + PAGE);
    }
    first.release();
    second.release();
    as.release();
  });

  test('SSE registers survive switches', async ({ platform, file }) => {
    file.write(0, code.movqRaxXmm0, code.syscall, code.movqXmm1Rdi, code.syscall);
    const as = platform.newAddressSpace();
    as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    const first = platform.newContext();
    const second = platform.newContext();
    const a = freshRegisters(CODE);
    const b = freshRegisters(CODE);
    new DataView(a.buffer).setBigUint64(a.xmm(0).byteOffset, 0xfeedface_cafebeefn, true);
    new DataView(b.buffer).setBigUint64(b.xmm(0).byteOffset, 0x0102030405060708n, true);

    assert.is(await run(first, as, a), SwitchKind.Syscall);
    assert.is(await run(second, as, b), SwitchKind.Syscall);
    assert.is(a.getBig(80), 0xfeedface_cafebeefn, 'xmm0 of the first context');
    assert.is(b.getBig(80), 0x0102030405060708n, 'xmm0 of the second context');

    a.rdi = 0x5555_6666;
    b.rdi = 0x7777_8888;
    assert.is(await run(first, as, a), SwitchKind.Syscall);
    assert.is(await run(second, as, b), SwitchKind.Syscall);
    assert.is(new DataView(a.buffer).getBigUint64(a.xmm(1).byteOffset, true), 0x5555_6666n);
    assert.is(new DataView(b.buffer).getBigUint64(b.xmm(1).byteOffset, true), 0x7777_8888n);
    first.release();
    second.release();
    as.release();
  });

  test('contexts share one address space', async ({ platform, file }) => {
    file.write(0, code.storeRaxToRbx, code.syscall);
    file.write(64, code.spin);
    const as = platform.newAddressSpace();
    as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    as.mapFile(DATA, file, 4 * PAGE, PAGE, Access.Read | Access.Write);
    const spinner = platform.newContext();
    const spinRegs = freshRegisters(CODE + 64);
    const spinning = spinner.switch(as, spinRegs);

    const writers = [platform.newContext(), platform.newContext()];
    for (let i = 0; i < writers.length; i++) {
      const regs = freshRegisters(CODE);
      regs.rbx = DATA + 8 * i;
      regs.rax = 100 + i;
      assert.is(await run(writers[i], as, regs), SwitchKind.Syscall);
    }
    assert.is(file.readU64(4 * PAGE), 100n);
    assert.is(file.readU64(4 * PAGE + 8), 101n);

    spinner.interrupt();
    assert.is(await spinning, SwitchKind.Interrupted);
    for (const ctx of [spinner, ...writers]) ctx.release();
    as.release();
  });

  test('address spaces are separate', async ({ platform, file }) => {
    file.write(0, code.loadRaxFromRbx, code.syscall);
    file.writeU64(4 * PAGE, 0xaaaan);
    file.writeU64(5 * PAGE, 0xbbbbn);
    const one = platform.newAddressSpace();
    const two = platform.newAddressSpace();
    for (const as of [one, two]) as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    one.mapFile(DATA, file, 4 * PAGE, PAGE, Access.Read);
    two.mapFile(DATA, file, 5 * PAGE, PAGE, Access.Read);
    const ctx = platform.newContext();

    const regs = freshRegisters(CODE);
    regs.rbx = DATA;
    assert.is(await run(ctx, one, regs), SwitchKind.Syscall);
    assert.is(regs.rax, 0xaaaa);
    regs.rip = CODE;
    assert.is(await run(ctx, two, regs), SwitchKind.Syscall);
    assert.is(regs.rax, 0xbbbb);
    regs.rip = CODE;
    assert.is(await run(ctx, one, regs), SwitchKind.Syscall);
    assert.is(regs.rax, 0xaaaa);

    one.release();
    regs.rip = CODE;
    assert.is(await run(ctx, two, regs), SwitchKind.Syscall, 'releasing one address space leaves the other working');
    assert.is(regs.rax, 0xbbbb);
    ctx.release();
    two.release();
  });

  test('close leaves no process, thread or descriptor', async ({ file }) => {
    const before = hostResources();
    const platform = options.create();
    file.write(0, code.syscall, code.spin);
    const spaces = [platform.newAddressSpace(), platform.newAddressSpace()];
    const contexts = [platform.newContext(), platform.newContext()];
    for (const as of spaces) as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    for (let i = 0; i < contexts.length; i++) {
      assert.is(await run(contexts[i], spaces[i], freshRegisters(CODE)), SwitchKind.Syscall);
    }
    const during = hostResources();
    assert.ok(during.descendants.length + during.threads + during.fds > before.descendants.length + before.threads + before.fds - 1);

    platform.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const after = hostResources();
    assert.equal(after.descendants, before.descendants, 'host processes left behind');
    assert.is(after.threads, before.threads, 'host threads left behind');
    assert.is(after.fds, before.fds, 'descriptors left behind');
  });

  test.run();
}
