/**
 * Contexts of the KVM platform use a vCPU only during a switch. These tests run many live
 * contexts on a pool of one or two vCPUs and check that each keeps its own registers. A switch
 * that waits for a vCPU must neither block the event loop nor miss an interrupt, and a context
 * that spins in application code is preempted so that a waiting one runs.
 */
import * as assert from 'uvu/assert';
import { suite } from 'uvu';
import { Access, createPlatform, Reg, Registers, SwitchKind, type AddressSpace } from '@tsvisor/platform-api';
import { ScratchFile } from '../../platform-api/src/conformance/host.js';
import { KvmPlatform } from '../src/index.js';

const PAGE = 4096;
const CODE = 0x10000000;
const DATA = CODE + 0x10000;

/** movq xmm0, rbx; mov rax, fs:[0]; syscall */
const MARK = CODE;
/** movq rax, xmm0; syscall */
const READ_XMM0 = CODE + 64;
/** jmp $ */
const SPIN = CODE + 128;

interface Fixture {
  file: ScratchFile;
}

const test = suite<Fixture>('kvm vCPU pool', {} as Fixture);

test.before.each((fx) => {
  fx.file = new ScratchFile(2 * PAGE);
  fx.file.write(0, [0x66, 0x48, 0x0f, 0x6e, 0xc3], [0x64, 0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00], [0x0f, 0x05]);
  fx.file.write(64, [0x66, 0x48, 0x0f, 0x7e, 0xc0], [0x0f, 0x05]);
  fx.file.write(128, [0xeb, 0xfe]);
});

test.after.each((fx) => {
  fx.file.close();
});

function open(file: ScratchFile, maxVcpus: number): { platform: KvmPlatform; as: AddressSpace } {
  const platform = createPlatform('kvm', { maxVcpus }) as KvmPlatform;
  const as = platform.newAddressSpace();
  as.mapFile(CODE, file, 0, PAGE, Access.Read | Access.Execute);
  as.mapFile(DATA, file, PAGE, PAGE, Access.Read | Access.Write);
  return { platform, as };
}

function registersAt(rip: number): Registers {
  const regs = new Registers();
  regs.reset();
  regs.rip = rip;
  regs.rsp = DATA + PAGE;
  return regs;
}

function nextTick(): Promise<'tick'> {
  return new Promise((resolve) => setImmediate(() => resolve('tick')));
}

test('300 contexts on two vCPUs keep their own state', async ({ file }) => {
  const { platform, as } = open(file, 2);
  file.writeU64(PAGE, 0x1234_5678n);
  const contexts = Array.from({ length: 300 }, () => platform.newContext());
  const registers = contexts.map((_, i) => {
    const regs = registersAt(MARK);
    regs.rbx = 0x10000 + i;
    regs.r12 = 0x20000 + i;
    regs.setBig(Reg.fs_base, BigInt(DATA));
    return regs;
  });

  // Every context leaves xmm0 = rbx in its Registers; the next round runs on whichever vCPU is
  // free, in reverse order, so most contexts change vCPUs in between.
  for (let i = 0; i < contexts.length; i++) {
    assert.is(await contexts[i].switch(as, registers[i]), SwitchKind.Syscall, `context ${i} marks`);
    assert.is(registers[i].rax, 0x1234_5678, `context ${i} read through its fs_base`);
  }
  for (let i = contexts.length - 1; i >= 0; i--) {
    registers[i].rip = READ_XMM0;
    assert.is(await contexts[i].switch(as, registers[i]), SwitchKind.Syscall, `context ${i} reads xmm0`);
    assert.is(registers[i].rax, 0x10000 + i, `context ${i} xmm0`);
    assert.is(registers[i].r12, 0x20000 + i, `context ${i} r12`);
    assert.is(registers[i].getBig(Reg.fs_base), BigInt(DATA), `context ${i} fs_base`);
  }
  assert.ok(platform.vcpuCount <= 2, `the pool created ${platform.vcpuCount} vCPUs`);

  for (const ctx of contexts) ctx.release();
  platform.close();
});

test('waiting switch runs after preemption', async ({ file }) => {
  const { platform, as } = open(file, 1);
  const spinner = platform.newContext();
  const spinning = spinner.switch(as, registersAt(SPIN));
  assert.instance(spinning, Promise, 'the spinning switch is pending');

  const waiter = platform.newContext();
  const regs = registersAt(READ_XMM0);
  const waiting = waiter.switch(as, regs);
  assert.instance(waiting, Promise, 'the second switch waits for the only vCPU');
  assert.is(await Promise.race([waiting, nextTick()]), 'tick', 'the event loop runs while the switch waits');

  // The pool interrupts the spinner after its time slice and hands its vCPU over.
  assert.is(await spinning, SwitchKind.Interrupted, 'the spinner was preempted');
  assert.is(await waiting, SwitchKind.Syscall, 'the waiting switch ran');
  assert.is(platform.vcpuCount, 1, 'one vCPU');

  spinner.release();
  waiter.release();
  platform.close();
});

test('interrupt ends a waiting switch', async ({ file }) => {
  const { platform, as } = open(file, 1);
  const spinner = platform.newContext();
  const spinning = spinner.switch(as, registersAt(SPIN));

  const waiter = platform.newContext();
  const waiting = waiter.switch(as, registersAt(READ_XMM0));
  waiter.interrupt();
  assert.is(await waiting, SwitchKind.Interrupted, 'the waiting switch was interrupted');

  spinner.interrupt();
  assert.is(await spinning, SwitchKind.Interrupted, 'the spinner was interrupted');
  spinner.release();
  waiter.release();
  platform.close();
});

test('release rejects a waiting switch', async ({ file }) => {
  const { platform, as } = open(file, 1);
  const spinner = platform.newContext();
  const spinning = spinner.switch(as, registersAt(SPIN));

  const waiter = platform.newContext();
  const waiting = waiter.switch(as, registersAt(READ_XMM0)) as Promise<SwitchKind>;
  waiter.release();
  await waiting.then(
    () => assert.unreachable('a released context resolved its switch'),
    (error: Error) => assert.match(error.message, 'released'),
  );

  spinner.interrupt();
  assert.is(await spinning, SwitchKind.Interrupted, 'the spinner was interrupted');
  spinner.release();
  platform.close();
});

test('invalid maxVcpus is rejected', () => {
  assert.throws(() => createPlatform('kvm', { maxVcpus: 0 }), /maxVcpus must be an integer between 1 and \d+, got 0/);
  assert.throws(() => createPlatform('kvm', { maxVcpus: 1.5 }), /maxVcpus must be an integer/);
});

test.run();
