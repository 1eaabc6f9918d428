/**
 * Contents of the system-wide files of /proc: cpuinfo and meminfo read from the host (the sandbox
 * runs on the host's processors), and uptime, loadavg, mounts, stat, version and filesystems
 * generated from the sentry's state.
 */
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import type { Kernel } from '../kernel/kernel.js';
import { formatProcStat } from './proc-stat.js';
import { ST_NODEV, ST_NOEXEC, ST_NOSUID, ST_RDONLY } from './statfs.js';

export const SYSTEM_FILES = ['cpuinfo', 'meminfo', 'uptime', 'loadavg', 'mounts', 'stat', 'version', 'filesystems'] as const;
export type SystemFile = (typeof SYSTEM_FILES)[number];

function hostFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    // A host without procfs still gets a readable, empty file rather than an error in the sandbox.
    return Buffer.alloc(0);
  }
}

function formatUptime(kernel: Kernel): string {
  const hundredths = (process.hrtime.bigint() - kernel.bootTime) / 10_000_000n;
  // NOTE: the sentry does not measure idle time, so the second field is 0.
  return `${hundredths / 100n}.${String(hundredths % 100n).padStart(2, '0')} 0.00\n`;
}

function formatLoadavg(kernel: Kernel): string {
  let running = 0;
  let newest = 0;
  for (const task of kernel.tasks.values()) {
    if (!task.sleeping) running++;
    newest = Math.max(newest, task.tid);
  }
  // NOTE: the sentry keeps no load averages, so the three averages are 0.
  return `0.00 0.00 0.00 ${running}/${kernel.tasks.size} ${newest}\n`;
}

/**
 * Filesystem types the sentry implements, as /proc/filesystems lists them. None needs a block
 * device, so each line starts with "nodev".
 */
const FILESYSTEM_TYPES = ['host', 'tmpfs', 'proc'] as const;

/**
 * Formats /proc/version from the values uname returns. Linux adds who built the kernel and with
 * which compiler in the brackets, which the sentry replaces by its own name.
 */
function formatVersion(): string {
  return `Linux version ${os.release()} (tsvisor@sandbox) (tsvisor sentry) ${os.version()}\n`;
}

/** Formats /proc/mounts: one "source target type options 0 0" line per mount, / first. */
export function formatMounts(kernel: Kernel): string {
  let text = '';
  for (const mount of kernel.vfs.mountList()) {
    const flags = mount.fs.statfs('', undefined).flags;
    const options = [(flags & ST_RDONLY) !== 0n ? 'ro' : 'rw'];
    if ((flags & ST_NOSUID) !== 0n) options.push('nosuid');
    if ((flags & ST_NODEV) !== 0n) options.push('nodev');
    if ((flags & ST_NOEXEC) !== 0n) options.push('noexec');
    text += `${mount.fs.name} ${mount.path} ${mount.fs.name} ${options.join(',')} 0 0\n`;
  }
  return text;
}

/** Generates the contents of the system file `name` at the time of the call. */
export function systemFileContents(name: SystemFile, kernel: Kernel): Buffer {
  switch (name) {
    case 'cpuinfo':
      return hostFile('/proc/cpuinfo');
    case 'meminfo':
      return hostFile('/proc/meminfo');
    case 'uptime':
      return Buffer.from(formatUptime(kernel));
    case 'loadavg':
      return Buffer.from(formatLoadavg(kernel));
    case 'mounts':
      return Buffer.from(formatMounts(kernel));
    case 'stat':
      return Buffer.from(formatProcStat(kernel));
    case 'version':
      return Buffer.from(formatVersion());
    case 'filesystems':
      return Buffer.from(FILESYSTEM_TYPES.map((type) => `nodev\t${type}\n`).join(''));
  }
}
