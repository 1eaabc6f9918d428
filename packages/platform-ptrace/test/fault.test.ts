import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { Access, SwitchKind } from '@tsvisor/platform-api';
import { classifySignal, type FaultDetails } from '../src/fault.js';
import { RangeMap } from '../src/range-map.js';

const SIGBUS = 7;
const SIGSEGV = 11;
const SIGTRAP = 5;

function siginfo(signo: number, code: number, address: number): Uint8Array {
  const info = new Uint8Array(128);
  const view = new DataView(info.buffer);
  view.setInt32(0, signo, true);
  view.setInt32(8, code, true);
  view.setBigUint64(16, BigInt(address), true);
  return info;
}

function classify(info: Uint8Array, rip: number, mappings = new RangeMap()): { kind: number; fault: FaultDetails } {
  const fault = { address: 0, access: 0 };
  return { kind: classifySignal(info, rip, mappings, fault), fault };
}

test('fault at rip is an execute', () => {
  const { kind, fault } = classify(siginfo(SIGSEGV, 2, 0x20000000), 0x20000000);
  assert.is(kind, SwitchKind.Fault);
  assert.is(fault.address, 0x20000000);
  assert.is(fault.access, Access.Execute);
});

test('fault on next page of instruction is an execute', () => {
  const { kind, fault } = classify(siginfo(SIGSEGV, 1, 0x20001000), 0x20000ffd);
  assert.is(kind, SwitchKind.Fault);
  assert.is(fault.access, Access.Execute);
});

test('access error on read-only page is a write', () => {
  const mappings = new RangeMap();
  mappings.set(0x30000000, 0x30001000, Access.Read);
  const { kind, fault } = classify(siginfo(SIGSEGV, 2, 0x30000008), 0x10000000, mappings);
  assert.is(kind, SwitchKind.Fault);
  assert.is(fault.access, Access.Write);
});

test('unmapped address is a read', () => {
  const { kind, fault } = classify(siginfo(SIGSEGV, 1, 0x7ffd_0000_0010), 0x10000000);
  assert.is(kind, SwitchKind.Fault);
  assert.is(fault.address, 0x7ffd_0000_0010);
  assert.is(fault.access, Access.Read);
});

test('bus error on mapped file is a fault', () => {
  const { kind, fault } = classify(siginfo(SIGBUS, 2, 0x40000000), 0x10000000);
  assert.is(kind, SwitchKind.Fault);
  assert.is(fault.address, 0x40000000);
});

test('other signals stay signals', () => {
  assert.is(classify(siginfo(SIGSEGV, 0x80, 0), 0x10000000).kind, SwitchKind.Signal);
  assert.is(classify(siginfo(SIGTRAP, 0x80, 0), 0x10000000).kind, SwitchKind.Signal);
  assert.is(classify(siginfo(SIGBUS, 1, 0x40000000), 0x10000000).kind, SwitchKind.Signal);
});

test.run();
