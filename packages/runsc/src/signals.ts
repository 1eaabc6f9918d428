/**
 * Forwarding of the signals runsc receives into the sandbox, so that `kill -USR2 <runsc pid>`
 * reaches the program as `kill -USR2 <program pid>` would natively.
 *
 * Node installs a listener only for the named signals of os.constants.signals, so the real-time
 * signals (SIGRTMIN..SIGRTMAX) cannot be caught and keep their default action on runsc.
 */
import * as os from 'node:os';
import createDebug from 'debug';
import type { SandboxController } from '@tsvisor/sentry';

const log = createDebug('tsvisor:runsc');

/**
 * Every signal runsc catches and passes on. SIGKILL and SIGSTOP are left out because they cannot
 * be caught, and SIGCHLD because it reports runsc's own children (the platform's stub processes).
 * SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP and SIGABRT report faults and crashes of runsc itself,
 * so they keep their default action, which ends runsc.
 *
 * A listener also keeps runsc from stopping on SIGTSTP, SIGTTIN and SIGTTOU or dying on the rest
 * while the sandbox runs. SIGUSR1 is in the list because a listener replaces Node's own handler,
 * which would otherwise start the inspector, a debugger inside the sentry. bin/runsc.js installs
 * such a listener for the whole life of the process.
 *
 * Only a SIGPIPE sent with kill(2) reaches the listener: the sentry writes to host pipes with
 * SIGPIPE blocked and takes back the one a closed pipe raises, and gives the writer in the sandbox
 * its own SIGPIPE, as on Linux.
 */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = [
  'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM',
  'SIGSTKFLT', 'SIGCONT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ',
  'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS',
];

/**
 * The signals that go to the whole foreground process group of the sandbox's terminal, or to
 * init's process group when there is no terminal. A terminal sends these to a process group
 * (Ctrl-C, Ctrl-\, Ctrl-Z, a window size change, a hangup), and job control sends SIGCONT to a
 * whole stopped job. Every other signal goes to the sandbox's init only, as `kill PID` sends it
 * to one process.
 */
const PROCESS_GROUP_SIGNALS: ReadonlySet<NodeJS.Signals> = new Set([
  'SIGINT', 'SIGQUIT', 'SIGTSTP', 'SIGWINCH', 'SIGHUP', 'SIGCONT',
]);

/**
 * Starts passing every signal of FORWARDED_SIGNALS that runsc receives into the sandbox through
 * `controller`, and returns the function that stops it.
 */
export function forwardSignals(controller: SandboxController): () => void {
  const forward = (signal: NodeJS.Signals): void => {
    const toGroup = PROCESS_GROUP_SIGNALS.has(signal);
    if (log.enabled) log('forwarding %s to the %s', signal, toGroup ? 'foreground process group' : 'init process');
    const number = os.constants.signals[signal];
    if (toGroup) controller.signalForeground(number);
    else controller.signalInit(number);
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);

  return () => {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
  };
}
