/**
 * Hardware capability words of the host, taken from the auxiliary vector the host kernel gave this
 * Node process (/proc/self/auxv). The host kernel derives AT_HWCAP from CPUID leaf 1 (EDX) and
 * AT_HWCAP2 from features it enabled (such as FSGSBASE), and the sandboxed program runs on the same
 * CPU under the same kernel, so the host's values are the truthful ones.
 */
import * as fs from 'node:fs';

const AT_HWCAP = 16;
const AT_HWCAP2 = 26;

export interface HostCapabilities {
  readonly hwcap: number;
  readonly hwcap2: number;
}

let cached: HostCapabilities | undefined;

export function hostCapabilities(): HostCapabilities {
  if (cached !== undefined) return cached;
  let hwcap = 0;
  let hwcap2 = 0;
  const auxv = fs.readFileSync('/proc/self/auxv');
  for (let offset = 0; offset + 16 <= auxv.length; offset += 16) {
    const type = Number(auxv.readBigUInt64LE(offset));
    const value = Number(auxv.readBigUInt64LE(offset + 8));
    if (type === AT_HWCAP) hwcap = value;
    if (type === AT_HWCAP2) hwcap2 = value;
  }
  cached = { hwcap, hwcap2 };
  return cached;
}
