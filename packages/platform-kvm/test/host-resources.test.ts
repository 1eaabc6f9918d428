/**
 * Host resources outside the conformance suite's reach: what a killed Node process leaves behind,
 * and probe()'s reason when /dev/kvm cannot be opened.
 */
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';

const here = path.dirname(fileURLToPath(import.meta.url));
const packageRoot = path.resolve(here, '..');

// Creates a platform and a context spinning in the guest, reports its pid, and waits to be killed.
const SPINNING_CHILD = `
const { Access, createPlatform, Registers } = require('@tsvisor/platform-api');
const { ScratchFile } = require('../platform-api/src/conformance/host.ts');
require('./src/index.ts');
const platform = createPlatform('kvm');
const file = new ScratchFile(4096);
file.write(0, [0xeb, 0xfe]);
const as = platform.newAddressSpace();
as.mapFile(0x10000000, file, 0, 4096, Access.Read | Access.Execute);
const regs = new Registers();
regs.reset();
regs.rip = 0x10000000;
void platform.newContext().switch(as, regs);
console.log('spinning');
setInterval(() => {}, 1000);
`;

function threadNames(pid: number): string[] {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).map((tid) => fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim());
  } catch {
    return [];
  }
}

test('SIGKILL leaves no VM, thread or process', async () => {
  // tsx/cjs compiles TypeScript in the child itself, so the child is the process that owns the VM.
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', '-e', SPINNING_CHILD], {
    cwd: packageRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const ready = await new Promise<boolean>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('spinning')) resolve(true);
      });
      child.on('exit', () => resolve(false));
    });
    assert.ok(ready, 'the child started a spinning guest');
    const descriptors = fs.readdirSync(`/proc/${child.pid}/fd`).map((fd) => {
      try {
        return fs.readlinkSync(`/proc/${child.pid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
    assert.ok(descriptors.some((target) => target.includes('kvm-vm')), 'the child owns a VM');
    assert.ok(descriptors.some((target) => target.includes('kvm-vcpu')), 'the child owns a vCPU');
    assert.ok(threadNames(child.pid!).length > 1, 'the child runs threads');
  } finally {
    child.kill('SIGKILL');
  }

  await new Promise((resolve) => child.on('exit', resolve));
  assert.is(fs.existsSync(`/proc/${child.pid}`), false, 'the child is gone, and its VM, vCPUs and threads with it');
});

test('probe names missing permission for /dev/kvm', () => {
  if (process.getuid?.() !== 0) return; // only root can start a process as another user
  const mode = fs.statSync('/dev/kvm').mode;
  if ((mode & 0o006) !== 0) return; // everyone may open it here, so nobody lacks permission
  const probe = spawnSync(process.execPath, ['--require', 'tsx/cjs', '-e', "console.log(JSON.stringify(require('./src/probe.ts').probe()));"], {
    cwd: packageRoot,
    uid: 65534,
    gid: 65534,
    encoding: 'utf8',
    env: { ...process.env, HOME: '/tmp' },
  });
  assert.is(probe.status, 0, probe.stderr);
  const result = JSON.parse(probe.stdout.trim().split('\n').pop()!);
  assert.is(result.available, false);
  assert.match(result.reason, 'no permission to open /dev/kvm');
});

test.run();
