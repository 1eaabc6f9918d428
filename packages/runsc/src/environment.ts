import { UsageError } from './flags.js';

/**
 * Builds the program's environment as NAME=VALUE strings: runsc's own environment, then each
 * --env assignment in order. A name that is set more than once keeps its position of first
 * appearance and its last value, as `env A=1 A=2` gives one A=2.
 */
export function buildEnvironment(hostEnv: NodeJS.ProcessEnv, assignments: readonly string[]): string[] {
  const values = new Map<string, string>();
  for (const [name, value] of Object.entries(hostEnv)) {
    if (value !== undefined) values.set(name, value);
  }

  for (const assignment of assignments) {
    const eq = assignment.indexOf('=');
    if (eq < 1) throw new UsageError(`--env needs NAME=VALUE, got "${assignment}"`);
    values.set(assignment.slice(0, eq), assignment.slice(eq + 1));
  }

  return [...values].map(([name, value]) => `${name}=${value}`);
}
