import createDebug from 'debug';
import * as fs from 'node:fs';

/**
 * Command-line flags with gVisor's names where the meaning is the same. Flags may come before the
 * command (`runsc --platform=ptrace do ...`, as gVisor takes them) or after it, before the program.
 */

export interface Flags {
  platform: string;
  platformModules: string[];
  strace: boolean;
  debug: boolean;
  debugLog?: string;
  network: string;
  root: string;
  cwd?: string;
  tmpfs?: string[];
  env: string[];
  help: boolean;
}

interface FlagSpec {
  readonly takesValue: boolean;
  readonly apply: (flags: Flags, value: string) => void;
  readonly help: string;
}

export const FLAG_SPECS: Record<string, FlagSpec> = {
  platform: {
    takesValue: true,
    apply: (f, v) => { f.platform = v; },
    help: 'platform that intercepts system calls: a name from `runsc platforms`, or auto (default)',
  },
  'platform-module': {
    takesValue: true,
    apply: (f, v) => { f.platformModules.push(v); },
    help: 'load a third-party platform package or file before choosing the platform (repeatable)',
  },
  strace: {
    takesValue: false,
    apply: (f) => { f.strace = true; },
    help: 'print every system call of the sandboxed program with its arguments and result to stderr',
  },
  debug: {
    takesValue: false,
    apply: (f) => { f.debug = true; },
    help: 'enable debug logging (all tsvisor:* namespaces) and full error details',
  },
  'debug-log': {
    takesValue: true,
    apply: (f, v) => { f.debugLog = v; },
    help: 'write debug logging to this file instead of stderr',
  },
  network: {
    takesValue: true,
    apply: (f, v) => { f.network = v; },
    help: 'network mode; only none is supported so far (the sandbox has no network)',
  },
  root: {
    takesValue: true,
    apply: (f, v) => { f.root = v; },
    help: 'host directory shown read-only as / inside the sandbox (default /)',
  },
  cwd: {
    takesValue: true,
    apply: (f, v) => { f.cwd = v; },
    help: 'working directory inside the sandbox (default: the current directory)',
  },
  tmpfs: {
    takesValue: true,
    apply: (f, v) => { f.tmpfs = v === '' ? [] : v.split(','); },
    help: 'comma-separated sandbox paths that get a private tmpfs (default /tmp,/dev/shm; empty for none)',
  },
  env: {
    takesValue: true,
    apply: (f, v) => { f.env.push(v); },
    help: 'set NAME=VALUE in the program environment (repeatable)',
  },
  help: {
    takesValue: false,
    apply: (f) => { f.help = true; },
    help: 'show help',
  },
};

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function defaultFlags(): Flags {
  return { platform: process.env.TSVISOR_PLATFORM || 'auto', platformModules: [], strace: false, debug: false, network: 'none', root: '/', env: [], help: false };
}

/**
 * Consumes flags from the front of `args` into `flags` and returns the index of the first argument
 * that is not a flag. A lone `--` ends the flags and is skipped.
 */
export function parseFlags(args: string[], flags: Flags): number {
  let i = 0;
  while (i < args.length) {
    const arg = args[i];
    if (arg === '--') return i + 1;
    if (arg === '-h') {
      flags.help = true;
      i++;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') return i;

    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = FLAG_SPECS[name];
    if (spec === undefined) {
      throw new UsageError(`unknown flag ${arg}; run \`runsc --help\` for the list of flags`);
    }

    if (!spec.takesValue) {
      if (eq >= 0) {
        const value = body.slice(eq + 1);
        if (value !== 'true' && value !== 'false') throw new UsageError(`flag --${name} takes no value, got "${value}"`);
        if (value === 'true') spec.apply(flags, '');
      } else {
        spec.apply(flags, '');
      }
      i++;
      continue;
    }

    if (eq >= 0) {
      spec.apply(flags, body.slice(eq + 1));
      i++;
    } else {
      if (i + 1 >= args.length) throw new UsageError(`flag --${name} needs a value, as in --${name}=VALUE`);
      spec.apply(flags, args[i + 1]);
      i += 2;
    }
  }
  return i;
}

export function flagsHelp(): string {
  return Object.entries(FLAG_SPECS)
    .map(([name, spec]) => `  --${spec.takesValue ? `${name}=VALUE` : name}`.padEnd(26) + spec.help)
    .join('\n');
}

let debugApplied = false;

/** Turns on every tsvisor:* debug namespace for --debug, writing to the --debug-log file if one is named. */
export function applyDebugFlags(flags: Flags): void {
  if (debugApplied || (!flags.debug && flags.debugLog === undefined)) return;
  debugApplied = true;
  createDebug.enable(process.env.DEBUG ? `${process.env.DEBUG},tsvisor:*` : 'tsvisor:*');
  if (flags.debugLog === undefined) return;

  let fd: number;
  try {
    fd = fs.openSync(flags.debugLog, 'a');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new UsageError(`cannot open the --debug-log file ${flags.debugLog} (${reason}); name a writable file`);
  }
  createDebug.log = (...args: unknown[]) => {
    fs.writeSync(fd, `${args.map(String).join(' ')}\n`);
  };
}
