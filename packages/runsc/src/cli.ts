/**
 * The runsc command line. Every failure the user can cause ends in one line on stderr naming the
 * cause, and a non-zero exit status; --debug adds the details.
 */
import createDebug from 'debug';
import { exitStatusFor, isUserError } from './exit-status.js';
import { applyDebugFlags, defaultFlags, flagsHelp, parseFlags, UsageError, type Flags } from './flags.js';
import { runDo } from './commands/do.js';
import { runPlatforms } from './commands/platforms.js';
import { runVersion } from './commands/version.js';

const log = createDebug('tsvisor:runsc');

const COMMANDS: Record<string, { summary: string; run: (args: string[], flags: Flags) => Promise<number> }> = {
  do: { summary: 'run a program in a new sandbox: runsc do [FLAGS] [--] PROGRAM [ARGS...]', run: runDo },
  platforms: { summary: 'list installed platforms and whether each can run on this host', run: runPlatforms },
  version: { summary: 'print the runsc version', run: runVersion },
};

export function usage(): string {
  const commands = Object.entries(COMMANDS)
    .map(([name, command]) => `  ${name.padEnd(12)}${command.summary}`)
    .join('\n');
  return `Usage: runsc [FLAGS] COMMAND [FLAGS] [ARGS...]\n\nCommands:\n${commands}\n\nFlags:\n${flagsHelp()}\n`;
}

/** Runs runsc with the given arguments and returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const flags = defaultFlags();
  try {
    let index = parseFlags(argv, flags);
    const name = argv[index];
    if (name === undefined) {
      process.stdout.write(usage());
      return flags.help ? 0 : 2;
    }
    const command = COMMANDS[name];
    if (command === undefined) {
      throw new UsageError(`unknown command "${name}"; the commands are ${Object.keys(COMMANDS).join(', ')}`);
    }
    index++;
    applyDebugFlags(flags);
    log('command %s, arguments %o', name, argv.slice(index));
    return await command.run(argv.slice(index), flags);
  } catch (error) {
    return report(error, flags);
  }
}

function report(error: unknown, flags: Flags): number {
  const message = error instanceof Error ? error.message : String(error);
  const firstLine = message.split('\n')[0];
  if (isUserError(error)) {
    process.stderr.write(`runsc: ${firstLine}\n`);
  } else {
    const hint = flags.debug ? '' : ' (run with --debug for details)';
    process.stderr.write(`runsc: internal error: ${firstLine}${hint}\n`);
  }
  if (flags.debug && error instanceof Error && error.stack) {
    process.stderr.write(`${error.stack}\n`);
  }
  return exitStatusFor(error);
}
