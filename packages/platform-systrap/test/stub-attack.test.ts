// Application code that reads the stub's code, finds its syscall instructions and jumps to them
// with its own registers, as a hostile program would. None of that may create a host process or
// thread, and the sentry must learn that the program broke its own stub.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import * as fs from 'node:fs';
import { Access, SwitchKind, createPlatform } from '@tsvisor/platform-api';
import type { Context, Platform } from '@tsvisor/platform-api';
import { StubDestroyedError } from '../src/index.js';
import type { SystrapAddressSpace } from '../src/index.js';
import { ScratchFile, freshRegisters } from '@tsvisor/platform-api/testing';
import { CODE, PAGE } from './helpers.js';

const STUB_CODE_ADDRESS = 0x7fff00000000;
const STUB_CODE_SIZE = 0x2000;
const STUB_SHARED_ADDRESS = 0x7fff10000000;
const DATA = 0x20000000;
const SIGCHLD = 17;
const SIGSYS = 31;

const SYS = { mmap: 9, mprotect: 10, munmap: 11, clone: 56, fork: 57, vfork: 58, execve: 59, exit: 60, kill: 62, exitGroup: 231, tgkill: 234, clone3: 435 };

/** rep movsb; syscall */
const COPY_AND_RETURN = [0xf3, 0xa4, 0x0f, 0x05];
/** jmp rbx */
const JUMP_RBX = [0xff, 0xe3];
/** mov [rbx], rax */
const STORE_RAX_TO_RBX = [0x48, 0x89, 0x03];

/**
 * The reported attack: scan the stub's pages from STUB_CODE_ADDRESS for the bytes of a syscall
 * instruction, then jump there with clone(SIGCHLD, 0) in the registers.
 */
const SCAN_AND_CLONE = [
  ...[0x48, 0xbe, ...bytesOf(STUB_CODE_ADDRESS)], // movabs rsi, STUB_CODE_ADDRESS
  ...[0x66, 0x81, 0x3e, 0x0f, 0x05], // loop: cmp word ptr [rsi], 0x050f
  ...[0x74, 0x05], // je found
  ...[0x48, 0xff, 0xc6], // inc rsi
  ...[0xeb, 0xf4], // jmp loop
  ...[0xb8, SYS.clone, 0x00, 0x00, 0x00], // found: mov eax, 56
  ...[0xbf, SIGCHLD, 0x00, 0x00, 0x00], // mov edi, SIGCHLD
  ...[0x48, 0x89, 0xf3], // mov rbx, rsi
  ...[0x31, 0xf6], // xor esi, esi
  ...JUMP_RBX,
];

function bytesOf(value: number): number[] {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(BigInt(value));
  return [...buffer];
}

/** Runs one switch; a switch still running after two seconds is interrupted and reported as hung. */
async function switchOrHang(ctx: Context, as: SystrapAddressSpace, regs: ReturnType<typeof freshRegisters>): Promise<number | Error | 'hung'> {
  const timer = setTimeout(() => ctx.interrupt(), 2000);
  try {
    const kind = await ctx.switch(as, regs);
    return kind === SwitchKind.Interrupted ? 'hung' : kind;
  } catch (error) {
    return error as Error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Processes other than this one that map `file`. A process forked from a stub inherits the
 * stub's mapping of the test's code. Other users of systrap on this host map only their own files.
 */
function strangers(file: ScratchFile): number[] {
  const target = fs.readlinkSync(`/proc/self/fd/${file.fd}`).replace(' (deleted)', '');
  const holders: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/maps`, 'utf8').includes(target)) holders.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return holders;
}

/** Pids of the live processes whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === pid && state !== 'Z') children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

/** Number of threads of process `pid`, or 0 once it is gone. */
function threadCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).length;
  } catch {
    return 0;
  }
}

/** Offsets of every syscall instruction's bytes in the stub's code, read by application code. */
async function stubSyscallOffsets(platform: Platform, file: ScratchFile): Promise<number[]> {
  file.write(0, COPY_AND_RETURN);
  const as = platform.newAddressSpace() as SystrapAddressSpace;
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  as.mapFile(DATA, file, 4 * PAGE, STUB_CODE_SIZE, Access.Read | Access.Write);
  const ctx = platform.newContext();
  const regs = freshRegisters(CODE);
  regs.rsi = STUB_CODE_ADDRESS;
  regs.rdi = DATA;
  regs.rcx = STUB_CODE_SIZE;
  assert.is(await ctx.switch(as, regs), SwitchKind.Syscall, 'application code can read the stub code');
  ctx.release();
  as.release();

  const code = Buffer.alloc(STUB_CODE_SIZE);
  fs.readSync(file.fd, code, 0, STUB_CODE_SIZE, 4 * PAGE);
  const offsets: number[] = [];
  for (let i = 0; i + 1 < code.length; i++) if (code[i] === 0x0f && code[i + 1] === 0x05) offsets.push(i);
  return offsets;
}

test('scan-and-clone attack destroys only the stub', async () => {
  const file = new ScratchFile(16 * PAGE);
  file.write(0, SCAN_AND_CLONE);
  file.write(PAGE, [0x0f, 0x05]);
  const platform = createPlatform('systrap');
  const as = platform.newAddressSpace() as SystrapAddressSpace;
  as.mapFile(CODE, file, 0, 2 * PAGE, Access.Read | Access.Execute);
  const ctx = platform.newContext();

  const outcome = await switchOrHang(ctx, as, freshRegisters(CODE));
  assert.instance(outcome, StubDestroyedError, `the switch ended with ${String(outcome)}`);
  const error = outcome as StubDestroyedError;
  assert.match(error.message, /^systrap: the sandboxed program destroyed its stub/);
  assert.is(error.signal, SIGSYS, 'the seccomp program killed the stub');
  assert.is(error.code, 'ERR_TSVISOR_STUB_DESTROYED');
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(strangers(file), [], 'a host process outside the sentry holds the sandbox memory');

  // The platform still works with a fresh address space.
  const fresh = platform.newAddressSpace();
  fresh.mapFile(CODE, file, PAGE, PAGE, Access.Read | Access.Execute);
  const again = platform.newContext();
  const regs = freshRegisters(CODE);
  regs.rax = 39;
  assert.is(await again.switch(fresh, regs), SwitchKind.Syscall);
  assert.is(regs.orig_rax, 39);
  platform.close();
  file.close();
});

test('jumps to every stub syscall create no process', async () => {
  const file = new ScratchFile(16 * PAGE);
  const platform = createPlatform('systrap');
  const offsets = await stubSyscallOffsets(platform, file);
  assert.ok(offsets.length >= 10, `found ${offsets.length} syscall instructions in the stub`);

  file.write(0, JUMP_RBX);
  const numbers = [SYS.clone, SYS.fork, SYS.vfork, SYS.clone3, SYS.execve, SYS.mmap, SYS.munmap, SYS.mprotect, SYS.kill, SYS.tgkill, SYS.exit, SYS.exitGroup];
  const outcomes = new Map<string, number>();
  for (const offset of offsets) {
    for (const nr of numbers) {
      const as = platform.newAddressSpace() as SystrapAddressSpace;
      as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
      const ctx = platform.newContext();
      const regs = freshRegisters(CODE);
      regs.rbx = STUB_CODE_ADDRESS + offset;
      regs.rax = nr;
      regs.rdi = SIGCHLD;
      const stub = as.pid;
      const outcome = await switchOrHang(ctx, as, regs);
      const where = `syscall ${nr} at stub offset 0x${offset.toString(16)}`;
      assert.equal(childrenOf(stub), [], `${where} created a process`);
      assert.ok(threadCount(stub) <= 2, `${where} left ${threadCount(stub)} threads in the stub; it had 2`);
      assert.is.not(outcome, 'hung', `${where} left the switch running`);
      if (outcome instanceof Error) {
        assert.instance(outcome, StubDestroyedError, `${where}: ${outcome.message}`);
      } else {
        assert.ok(outcome === SwitchKind.Signal || outcome === SwitchKind.Fault, `${where} ended with SwitchKind ${outcome}`);
      }
      const key = outcome instanceof Error ? outcome.name : `SwitchKind ${outcome}`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      ctx.release();
      as.release();
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(strangers(file), [], 'a host process outside the sentry holds the sandbox memory');
  assert.ok((outcomes.get('StubDestroyedError') ?? 0) > 0, 'some attacks destroyed their stub');
  platform.close();
  file.close();
});

test('exit at the stub exit site is reported', async () => {
  const file = new ScratchFile(16 * PAGE);
  const platform = createPlatform('systrap');
  const offsets = await stubSyscallOffsets(platform, file);
  file.write(0, JUMP_RBX);

  // Exactly one site makes exit (60): the thread exit. Every other site kills the stub.
  let threadExits = 0;
  for (const offset of offsets) {
    const as = platform.newAddressSpace() as SystrapAddressSpace;
    as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
    const ctx = platform.newContext();
    const regs = freshRegisters(CODE);
    regs.rbx = STUB_CODE_ADDRESS + offset;
    regs.rax = SYS.exit;
    const outcome = await switchOrHang(ctx, as, regs);
    assert.instance(outcome, StubDestroyedError, `exit at stub offset 0x${offset.toString(16)} ended with ${String(outcome)}`);
    if (/thread in slot \d+ of stub process \d+ exited/.test((outcome as Error).message)) threadExits++;
    ctx.release();
    as.release();
  }
  assert.is(threadExits, 1, 'one site ends the calling thread');
  platform.close();
  file.close();
});

test('forged sigreturn cannot move the signal stack', async () => {
  const file = new ScratchFile(16 * PAGE);
  const platform = createPlatform('systrap');
  const code = Buffer.alloc(STUB_CODE_SIZE);
  await stubSyscallOffsets(platform, file);
  fs.readSync(file.fd, code, 0, STUB_CODE_SIZE, 4 * PAGE);
  // mov eax, 15; syscall: the stub's signal restorer.
  const restorer = code.indexOf(Buffer.from([0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05])) + 5;
  assert.ok(restorer > 5, 'the stub code contains its restorer');

  // A kernel ucontext at DATA whose uc_stack is application memory and whose rip makes a system
  // call, which the kernel then delivers on that stack.
  const frame = Buffer.alloc(PAGE);
  const altStack = DATA + PAGE;
  frame.writeBigUInt64LE(BigInt(altStack), 16); // uc_stack.ss_sp
  frame.writeBigUInt64LE(BigInt(4 * PAGE), 32); // uc_stack.ss_size
  const gregs = 40;
  frame.writeBigUInt64LE(BigInt(DATA + 4 * PAGE), gregs + 15 * 8); // rsp
  frame.writeBigUInt64LE(BigInt(CODE + 64), gregs + 16 * 8); // rip: syscall
  frame.writeBigUInt64LE(0x202n, gregs + 17 * 8); // eflags
  frame.writeBigUInt64LE(0x33n | (0x2bn << 48n), gregs + 18 * 8); // cs, gs, fs, ss
  fs.writeSync(file.fd, frame, 0, frame.length, 8 * PAGE);
  file.write(0, JUMP_RBX);
  file.write(64, [0x0f, 0x05]);

  const as = platform.newAddressSpace() as SystrapAddressSpace;
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  as.mapFile(DATA, file, 8 * PAGE, 5 * PAGE, Access.Read | Access.Write);
  const ctx = platform.newContext();
  const regs = freshRegisters(CODE);
  regs.rbx = STUB_CODE_ADDRESS + restorer;
  regs.rax = 15;
  regs.rsp = DATA;
  const outcome = await switchOrHang(ctx, as, regs);
  assert.instance(outcome, StubDestroyedError, `the switch ended with ${String(outcome)}`);
  assert.is((outcome as StubDestroyedError).signal, 4, 'the handler ended the stub with SIGILL');
  platform.close();
  file.close();
});

test('request page is read-only to the application', async () => {
  const file = new ScratchFile(16 * PAGE);
  file.write(0, STORE_RAX_TO_RBX);
  const platform = createPlatform('systrap');
  const as = platform.newAddressSpace() as SystrapAddressSpace;
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  const ctx = platform.newContext();
  const regs = freshRegisters(CODE);
  regs.rbx = STUB_SHARED_ADDRESS;
  regs.rax = 1;
  assert.is(await ctx.switch(as, regs), SwitchKind.Fault);
  assert.is(ctx.faultAddress, STUB_SHARED_ADDRESS);
  assert.is(ctx.faultAccess, Access.Write);

  // The stub still serves requests.
  as.mapFile(DATA, file, 4 * PAGE, PAGE, Access.Read | Access.Write);
  regs.rip = CODE;
  regs.rbx = DATA;
  regs.rax = 0x77;
  assert.is(await ctx.switch(as, regs), SwitchKind.Fault, 'the next instruction faults: the page after CODE holds zeros');
  const stored = Buffer.alloc(8);
  fs.readSync(file.fd, stored, 0, 8, 4 * PAGE);
  assert.is(stored.readBigUInt64LE(), 0x77n);
  platform.close();
  file.close();
});

test.run();
