/**
 * Signals sent to runsc reach the program in the sandbox, runsc neither dies nor stops of them,
 * and SIGUSR1 never starts Node's inspector in runsc. Each program traps the signal, prints
 * "ready" once the trap is set, and exits when its stdin is closed, so each run's output is exact.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const RUNSC = path.join(__dirname, '..', 'bin', 'runsc.js');
const BUSYBOX = '/usr/bin/busybox';

/** How long a run may take before the test kills runsc and fails. */
const RUN_TIMEOUT_MS = 20_000;

/** TCP state number of a listening socket in /proc/net/tcp. */
const TCP_LISTEN = '0A';
const INSPECTOR_PORT = 9229;

/**
 * Returns a busybox sh script that traps `signal`, prints "ready", waits until the trap has run
 * (at most about 10 s), prints "trapped", then exits 0 when its stdin reaches end of file.
 */
function trapScript(signal: string): string {
  return [
    `trap 'got=1' ${signal}`,
    'got=0',
    'echo ready',
    'i=0',
    'while [ $got = 0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done',
    '[ $got = 1 ] && echo trapped',
    'cat > /dev/null',
  ].join('; ');
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function descendantsOf(root: number): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    for (let cursor = parentOf(Number(entry)); cursor !== undefined && cursor > 1; cursor = parentOf(cursor)) {
      if (cursor === root) {
        found.push(Number(entry));
        break;
      }
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Inodes of the listening TCP sockets on `port`, from /proc/net/tcp and /proc/net/tcp6. */
function listeningSockets(port: number): string[] {
  const inodes: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const localPort = parseInt(fields[1].split(':')[1], 16);
      if (localPort === port && fields[3] === TCP_LISTEN) inodes.push(fields[9]);
    }
  }
  return inodes;
}

/** Socket inodes among the open descriptors of process `pid`. */
function socketInodes(pid: number): string[] {
  const inodes: string[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.push(match[1]);
    } catch {
      // The descriptor was closed while the directory was read.
    }
  }
  return inodes;
}

/** A runsc process under test whose output is collected. */
class RunscProcess {
  readonly child;
  stdout = '';
  stderr = '';
  killedByTest = false;
  readonly exited: Promise<number | null>;
  sandboxProcesses: number[] = [];

  constructor(argv: string[]) {
    this.child = spawn(process.execPath, [RUNSC, 'do', '--', ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    const timer = setTimeout(() => {
      this.killedByTest = true;
      this.child.kill('SIGKILL');
    }, RUN_TIMEOUT_MS);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  /** Resolves once stdout contains `text`, or when runsc exits, whichever comes first. */
  async waitForOutput(text: string): Promise<void> {
    let ended = false;
    void this.exited.then(() => {
      ended = true;
    });
    while (!this.stdout.includes(text) && !ended) await new Promise((resolve) => setTimeout(resolve, 20));
    this.sandboxProcesses = descendantsOf(this.child.pid!);
  }

  /** Closes the program's stdin and returns runsc's exit status. */
  async finish(): Promise<number | null> {
    this.child.stdin!.end();
    return this.exited;
  }
}

/** Runs trapScript(signal) under runsc, sends `signal` to runsc once the trap is set, and ends the run. */
async function sendToTrap(signal: string) {
  const runsc = new RunscProcess([BUSYBOX, 'sh', '-c', trapScript(signal)]);
  await runsc.waitForOutput('ready\n');
  runsc.child.kill(`SIG${signal}` as NodeJS.Signals);
  await runsc.waitForOutput('trapped\n');
  const runscAlive = alive(runsc.child.pid!);
  const status = await runsc.finish();
  return { runsc, status, runscAlive };
}

test('SIGUSR1 reaches the program and opens no inspector', async () => {
  const runsc = new RunscProcess([BUSYBOX, 'sh', '-c', trapScript('USR1')]);
  await runsc.waitForOutput('ready\n');
  runsc.child.kill('SIGUSR1');
  await runsc.waitForOutput('trapped\n');

  const runscSockets = socketInodes(runsc.child.pid!);
  const inspectorSockets = listeningSockets(INSPECTOR_PORT);
  const status = await runsc.finish();

  assert.is(runsc.stdout, 'ready\ntrapped\n', `stderr: ${runsc.stderr}`);
  assert.not.match(runsc.stderr, /Debugger listening/);
  assert.equal(inspectorSockets.filter((inode) => runscSockets.includes(inode)), [], 'runsc listens on the inspector port');
  assert.equal(inspectorSockets, [], `something listens on port ${INSPECTOR_PORT}`);
  assert.is(status, 0);
});

test('SIGUSR1 after the program ended leaves runsc quiet', async () => {
  // The listener installed by bin/runsc.js outlives the sandbox, so a late SIGUSR1 neither kills
  // runsc nor opens the inspector while it shuts down.
  const runsc = new RunscProcess([BUSYBOX, 'sh', '-c', "trap '' USR1; echo ready; cat > /dev/null"]);
  await runsc.waitForOutput('ready\n');
  const status = runsc.finish();
  for (let i = 0; i < 20 && alive(runsc.child.pid!); i++) {
    runsc.child.kill('SIGUSR1');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.is(await status, 0, `stderr: ${runsc.stderr}`);
  assert.not.match(runsc.stderr, /Debugger listening/);
});

// Every signal Node lets runsc catch, except SIGINT (sigint.test.ts), SIGUSR1 (above), SIGCONT
// and SIGTSTP (below), and SIGWINCH, whose default action is to do nothing.
const FORWARDED = [
  'HUP', 'QUIT', 'USR2', 'PIPE', 'ALRM', 'TERM', 'STKFLT', 'TTIN', 'TTOU', 'URG', 'XCPU', 'XFSZ',
  'VTALRM', 'PROF', 'IO', 'PWR', 'SYS',
];

test('other signals reach the program', async () => {
  for (const signal of FORWARDED) {
    const { runsc, status, runscAlive } = await sendToTrap(signal);
    assert.not.ok(runsc.killedByTest, `SIG${signal}: runsc did not exit`);
    assert.ok(runscAlive, `SIG${signal}: runsc died of the signal`);
    assert.is(runsc.stdout, 'ready\ntrapped\n', `SIG${signal}: stderr: ${runsc.stderr}`);
    assert.is(status, 0, `SIG${signal}`);
    assert.equal(runsc.sandboxProcesses.filter(alive), [], `SIG${signal}: sandbox processes left on the host`);
  }
});

test('SIGWINCH reaches the program', async () => {
  const { runsc, status } = await sendToTrap('WINCH');
  assert.is(runsc.stdout, 'ready\ntrapped\n', `stderr: ${runsc.stderr}`);
  assert.is(status, 0);
});

test('SIGTSTP does not stop runsc', async () => {
  const { runsc, status, runscAlive } = await sendToTrap('TSTP');
  assert.ok(runscAlive);
  assert.is(runsc.stdout, 'ready\ntrapped\n', `stderr: ${runsc.stderr}`);
  assert.is(status, 0);
});

test('SIGCONT resumes a stopped program', async () => {
  const runsc = new RunscProcess([BUSYBOX, 'sh', '-c', 'echo stopping; kill -STOP $$; echo resumed']);
  await runsc.waitForOutput('stopping\n');

  // The program may not have stopped yet when "stopping" arrives, so SIGCONT is repeated until it
  // resumes. A SIGCONT to a running process does nothing by default.
  let ended = false;
  void runsc.exited.then(() => {
    ended = true;
  });
  while (!ended && !runsc.stdout.includes('resumed')) {
    runsc.child.kill('SIGCONT');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const status = await runsc.finish();

  assert.not.ok(runsc.killedByTest, 'runsc did not exit');
  assert.is(runsc.stdout, 'stopping\nresumed\n', `stderr: ${runsc.stderr}`);
  assert.is(status, 0);
});

test('SIGCHLD is not forwarded', async () => {
  // busybox sh runs a SIGCHLD trap for each child that ends, so a forwarded SIGCHLD would print.
  const script = "trap 'echo chld' CHLD; echo ready; while read line; do :; done";
  const runsc = new RunscProcess([BUSYBOX, 'sh', '-c', script]);
  await runsc.waitForOutput('ready\n');
  runsc.child.kill('SIGCHLD');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const status = await runsc.finish();
  assert.is(runsc.stdout, 'ready\n');
  assert.is(status, 0);
});

test('writing to a closed pipe ends like natively', () => {
  const pipeline = (command: string) => spawnSync('bash', ['-c', `${command} | head -1; echo "status \${PIPESTATUS[0]}"`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const inside = pipeline(`"${process.execPath}" "${RUNSC}" do -- ${BUSYBOX} yes`);
  const outside = pipeline(`${BUSYBOX} yes`);
  assert.is(inside.stdout, outside.stdout);
  assert.is(inside.stdout, 'y\nstatus 141\n');
  assert.is(inside.stderr, '');
});

test('a closed pipe signals only the writer', () => {
  // The writer dies of SIGPIPE; the shell that started it, init in the sandbox, carries on.
  const script = `${BUSYBOX} seq 1 200000; echo "writer status $?" >&2; echo "shell continues" >&2`;
  const pipeline = (command: string) => spawnSync('bash', ['-c', `${command} | head -c 5 >/dev/null; echo "status \${PIPESTATUS[0]}"`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const inside = pipeline(`"${process.execPath}" "${RUNSC}" do -- ${BUSYBOX} sh -c '${script}'`);
  const outside = pipeline(`${BUSYBOX} sh -c '${script}'`);
  assert.is(outside.stderr, 'writer status 141\nshell continues\n');
  assert.is(inside.stderr, outside.stderr);
  assert.is(inside.stdout, outside.stdout);
});

test.run();
