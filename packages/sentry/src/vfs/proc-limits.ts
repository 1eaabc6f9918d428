/**
 * /proc/PID/limits: the thread group's resource limits in the table that Linux's
 * proc_pid_limits (fs/proc/base.c, Linux 6.x) prints, one row per RLIMIT_* in numbering order.
 */
import { RLIM_INFINITY, type ResourceLimits } from '../kernel/limits.js';

/** Row names and units, indexed by RLIMIT_* number. Nice and realtime priority have no unit. */
const LIMIT_ROWS: ReadonlyArray<readonly [string, string]> = [
  ['Max cpu time', 'seconds'],
  ['Max file size', 'bytes'],
  ['Max data size', 'bytes'],
  ['Max stack size', 'bytes'],
  ['Max core file size', 'bytes'],
  ['Max resident set', 'bytes'],
  ['Max processes', 'processes'],
  ['Max open files', 'files'],
  ['Max locked memory', 'bytes'],
  ['Max address space', 'bytes'],
  ['Max file locks', 'locks'],
  ['Max pending signals', 'signals'],
  ['Max msgqueue size', 'bytes'],
  ['Max nice priority', ''],
  ['Max realtime priority', ''],
  ['Max realtime timeout', 'us'],
];

function limitValue(value: bigint): string {
  return value === RLIM_INFINITY ? 'unlimited' : value.toString();
}

/**
 * Formats the limits table. Linux pads the name to 25 columns, both values to 20 and the unit to
 * 10, with a space after each column but the unit, so most rows end in spaces.
 */
export function formatLimits(limits: ResourceLimits): string {
  let text = `${'Limit'.padEnd(25)} ${'Soft Limit'.padEnd(20)} ${'Hard Limit'.padEnd(20)} ${'Units'.padEnd(10)}\n`;
  LIMIT_ROWS.forEach(([name, unit], resource) => {
    const { cur, max } = limits.get(resource);
    text += `${name.padEnd(25)} ${limitValue(cur).padEnd(20)} ${limitValue(max).padEnd(20)} `;
    if (unit !== '') text += unit.padEnd(10);
    text += '\n';
  });
  return text;
}
