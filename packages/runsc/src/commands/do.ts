import * as os from 'node:os';
import { loadPlatformModule } from '@tsvisor/platform-api';
import { runSandbox, SandboxController, SandboxError } from '@tsvisor/sentry';
import { buildEnvironment } from '../environment.js';
import { applyDebugFlags, flagsHelp, parseFlags, UsageError, type Flags } from '../flags.js';
import { forwardSignals } from '../signals.js';

/** `runsc do [FLAGS] [--] PROGRAM [ARGS...]`: runs one program and returns its exit status. */
export async function runDo(args: string[], flags: Flags): Promise<number> {
  const start = parseFlags(args, flags);
  const argv = args.slice(start);
  if (flags.help) {
    process.stdout.write(`Usage: runsc do [FLAGS] [--] PROGRAM [ARGS...]\n\nFlags:\n${flagsHelp()}\n`);
    return 0;
  }
  applyDebugFlags(flags);
  if (argv.length === 0) {
    throw new UsageError('missing program; usage: runsc do [FLAGS] [--] PROGRAM [ARGS...]');
  }
  if (argv[0] === '') {
    // execve of "" fails with ENOENT, so this is reported as a program that is not found.
    throw new SandboxError('the program name is empty; name a program, as in runsc do -- /bin/ls', os.constants.errno.ENOENT);
  }
  if (flags.network !== 'none') {
    throw new UsageError(`--network=${flags.network} is not supported; the sandbox has no network, use --network=none`);
  }

  for (const specifier of flags.platformModules) loadPlatformModule(specifier);

  const env = buildEnvironment(process.env, flags.env);

  const cwd = flags.cwd ?? process.cwd();
  const tmpfsMounts = flags.tmpfs ?? (flags.cwd === undefined ? tmpfsKeepingVisible(cwd) : undefined);

  // Signals sent to runsc go into the sandbox; runsc exits when the sandbox's init does.
  const controller = new SandboxController();
  const stopForwarding = forwardSignals(controller);
  // runSandbox restores the terminal when it returns or throws; this covers a process.exit()
  // elsewhere that ends runsc before that.
  const restoreTerminal = (): void => controller.restoreTerminal();
  process.on('exit', restoreTerminal);
  try {
    const result = await runSandbox({
      argv,
      env,
      platform: flags.platform,
      root: flags.root,
      cwd,
      tmpfsMounts,
      strace: flags.strace ? (line: string) => process.stderr.write(`${line}\n`) : undefined,
      controller,
    });
    return result.status;
  } finally {
    stopForwarding();
    process.off('exit', restoreTerminal);
  }
}

/** The sentry's default tmpfs mount points. */
const DEFAULT_TMPFS_MOUNTS = ['/tmp', '/dev/shm'];

/**
 * Returns the default tmpfs mounts minus any that would hide `cwd`. runsc do starts the program in
 * the host's current directory, and a tmpfs over it would make that directory disappear, so such a
 * mount is left out and the host's directory stays visible, read-only.
 */
function tmpfsKeepingVisible(cwd: string): string[] {
  return DEFAULT_TMPFS_MOUNTS.filter((mount) => cwd !== mount && !cwd.startsWith(`${mount}/`));
}
