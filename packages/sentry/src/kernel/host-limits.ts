/**
 * Reads the resource limits of the Node process, so that the sandbox's init starts with the same
 * limits a native child of this process would inherit.
 */
import * as fs from 'node:fs';
import { RLIM_INFINITY, RLIM_NLIMITS, ResourceLimits } from './limits.js';

/**
 * Returns the host's limits parsed from /proc/self/limits, whose rows follow the RLIMIT_*
 * numbering. A missing or unreadable file leaves Linux's defaults in place.
 */
export function hostResourceLimits(): ResourceLimits {
  const limits = new ResourceLimits();
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/limits', 'latin1');
  } catch {
    return limits;
  }
  // Row names contain spaces, so the soft and hard values are taken from the column offsets of the header.
  const [header, ...rows] = text.split('\n');
  const softStart = header.indexOf('Soft Limit');
  if (softStart < 0) return limits;
  for (let resource = 0; resource < Math.min(rows.length, RLIM_NLIMITS); resource++) {
    const [soft, hard] = rows[resource].slice(softStart).trim().split(/\s+/);
    const cur = parseLimit(soft);
    const max = parseLimit(hard);
    if (cur !== undefined && max !== undefined && cur <= max) limits.limits[resource] = { cur, max };
  }
  return limits;
}

function parseLimit(value: string | undefined): bigint | undefined {
  if (value === 'unlimited') return RLIM_INFINITY;
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return BigInt(value);
}
