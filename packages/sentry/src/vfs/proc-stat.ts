/**
 * /proc/stat in the format of Linux's fs/proc/stat.c (Linux 6.x), from the sentry's own state: its
 * CPU count, its uptime and the CPU time it spent, the tasks it created and runs. Nothing is read
 * from the host's /proc/stat, which describes other users' processes too.
 */
import * as os from 'node:os';
import type { Kernel } from '../kernel/kernel.js';

/** USER_HZ, the unit of the cpu lines. */
const CLOCK_TICKS_PER_SECOND = 100n;

/** sched_getaffinity reports at most 64 CPUs, so /proc/stat shows the same number. */
const MAX_CPUS = 64;

/** Number of softirq kinds Linux counts (NR_SOFTIRQS), each a column of the softirq line. */
const SOFTIRQ_KINDS = 10;

/** Returns the CPU count the sandbox reports, as sched_getaffinity does. */
export function sandboxCpuCount(): number {
  return Math.min(os.availableParallelism(), MAX_CPUS);
}

/**
 * Formats one cpu line: user nice system idle iowait irq softirq steal guest guest_nice, in ticks.
 * NOTE: the time the program runs in user mode in its host process is not measured, so user stays
 * 0 and all busy time is the sentry's own, which counts as system time.
 */
function cpuLine(name: string, system: bigint, idle: bigint): string {
  // Linux pads the total's name with two spaces, so that its columns line up with cpu0's.
  return `${name === 'cpu' ? 'cpu ' : name} 0 0 ${system} ${idle} 0 0 0 0 0 0\n`;
}

/** Formats /proc/stat at the time of the call. */
export function formatProcStat(kernel: Kernel): string {
  const cpus = BigInt(sandboxCpuCount());
  const uptimeNs = process.hrtime.bigint() - kernel.bootTime;
  const uptimeTicks = (uptimeNs * CLOCK_TICKS_PER_SECOND) / 1_000_000_000n;
  const usage = process.cpuUsage();
  const busyUs = BigInt(usage.user + usage.system) - kernel.cpuTimeAtStartUs;
  const capacity = uptimeTicks * cpus;
  let system = (busyUs * CLOCK_TICKS_PER_SECOND) / 1_000_000n;
  if (system > capacity) system = capacity;
  if (system < 0n) system = 0n;

  // The total goes to the "cpu" line and is shared out evenly, so the per-CPU lines add up to it.
  let text = cpuLine('cpu', system, capacity - system);
  for (let cpu = 0n; cpu < cpus; cpu++) {
    const share = system / cpus + (cpu < system % cpus ? 1n : 0n);
    text += cpuLine(`cpu${cpu}`, share, uptimeTicks - share);
  }

  let running = 0;
  for (const task of kernel.tasks.values()) {
    if (!task.sleeping) running++;
  }
  // btime is the wall-clock time at which the sandbox's uptime began, so btime + uptime is now.
  const bootSeconds = (BigInt(Date.now()) * 1_000_000n - uptimeNs) / 1_000_000_000n;

  // NOTE: the sandbox has no interrupts, and the sentry does not count context switches, so intr,
  // ctxt and softirq are 0.
  text += 'intr 0\n';
  text += 'ctxt 0\n';
  text += `btime ${bootSeconds}\n`;
  text += `processes ${kernel.tasksCreated}\n`;
  text += `procs_running ${Math.max(running, 1)}\n`;
  text += 'procs_blocked 0\n';
  text += `softirq 0${' 0'.repeat(SOFTIRQ_KINDS)}\n`;
  return text;
}
