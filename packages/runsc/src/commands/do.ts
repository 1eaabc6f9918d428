import { loadPlatformModule } from '@tsvisor/platform-api';
import { runSandbox } from '@tsvisor/sentry';
import { parseFlags, UsageError, type Flags } from '../flags.js';

/** `runsc do [FLAGS] [--] PROGRAM [ARGS...]`: runs one program and returns its exit status. */
export async function runDo(args: string[], flags: Flags): Promise<number> {
  const start = parseFlags(args, flags);
  const argv = args.slice(start);
  if (flags.help) {
    process.stdout.write('Usage: runsc do [FLAGS] [--] PROGRAM [ARGS...]\n');
    return 0;
  }
  if (argv.length === 0) {
    throw new UsageError('missing program; usage: runsc do [FLAGS] [--] PROGRAM [ARGS...]');
  }
  if (flags.network !== 'none') {
    throw new UsageError(`--network=${flags.network} is not supported; the sandbox has no network, use --network=none`);
  }

  for (const specifier of flags.platformModules) loadPlatformModule(specifier);

  const env = Object.entries(process.env)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => `${name}=${value}`);
  for (const assignment of flags.env) {
    if (!assignment.includes('=')) throw new UsageError(`--env needs NAME=VALUE, got "${assignment}"`);
    env.push(assignment);
  }

  const result = await runSandbox({
    argv,
    env,
    platform: flags.platform,
    root: flags.root,
    cwd: flags.cwd ?? process.cwd(),
    strace: flags.strace ? (line: string) => process.stderr.write(`${line}\n`) : undefined,
  });
  return result.status;
}
