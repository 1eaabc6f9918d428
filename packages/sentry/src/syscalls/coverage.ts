/** The system call coverage of the sentry, as data for docs/ and tooling. */
import './index.js';
import { Sys, type SyscallName } from './numbers.js';
import { syscallTable, type SupportLevel } from './table.js';

export interface SyscallCoverage {
  readonly nr: number;
  readonly name: SyscallName;
  readonly support: SupportLevel;
  readonly note?: string;
}

/** Returns every x86-64 system call by number with its support level; unregistered calls are 'unimplemented'. */
export function syscallCoverage(): SyscallCoverage[] {
  return (Object.entries(Sys) as Array<[SyscallName, number]>)
    .sort((a, b) => a[1] - b[1])
    .map(([name, nr]) => {
      const entry = syscallTable[nr];
      return entry === undefined
        ? { nr, name, support: 'unimplemented' as const }
        : { nr, name, support: entry.support, note: entry.note };
    });
}
