/**
 * runSandbox: runs one program in a new sandbox and returns its exit status. It creates the
 * platform, the kernel with its memory file, the VFS and the first task, loads the executable and
 * runs the task loop. When the program ends, however it ends, everything is released.
 */
import { createPlatform, PlatformUnavailableError, type Platform } from '@tsvisor/platform-api';
import { Errno, errnoName, SysError } from './errno.js';
import { hostCredentials } from './kernel/credentials.js';
import { resolveProgram, type ResolvedProgram } from './kernel/exec.js';
import { Kernel } from './kernel/kernel.js';
import { hostResourceLimits } from './kernel/host-limits.js';
import { holdFdTable, holdMemory } from './kernel/shared-resources.js';
import { sendGroupSignal } from './kernel/signal-delivery.js';
import { startTask } from './kernel/task-loop.js';
import { Task } from './kernel/task.js';
import { SwitchError } from './kernel/switch-errors.js';
import { Terminal } from './kernel/terminal.js';
import { SIGCHLD, ThreadGroup } from './kernel/thread-group.js';
import { ExecError } from './loader/elf.js';
import { loadExecutable } from './loader/loader.js';
import { MemoryManager } from './mm/memory-manager.js';
import './syscalls/index.js';
import { FdTable } from './vfs/fd-table.js';
import { AT_FDCWD, isDir, isRegular } from './vfs/flags.js';
import { FsContext } from './vfs/fs-context.js';
import { HostStream } from './vfs/host-stream.js';
import { tmpfsMountProblem, Vfs } from './vfs/vfs.js';

export interface SandboxOptions {
  /** The program and its arguments. A program name without "/" is looked up in the PATH of `env`. */
  readonly argv: readonly string[];
  /** The environment, as NAME=VALUE strings. Defaults to none. */
  readonly env?: readonly string[];
  /**
   * Platform name, or "auto" for the fastest one that can run here. Defaults to the
   * TSVISOR_PLATFORM environment variable, then "auto".
   */
  readonly platform?: string;
  /** Host directory exposed read-only as the sandbox's "/". Defaults to "/". */
  readonly root?: string;
  /**
   * Sandbox paths where a private, initially empty tmpfs is mounted, hiding the host's files
   * there. Defaults to ["/tmp", "/dev/shm"]; [] mounts none.
   */
  readonly tmpfsMounts?: readonly string[];
  /** Working directory inside the sandbox. Defaults to "/". */
  readonly cwd?: string;
  /** Host descriptors that become the program's 0, 1, 2. Defaults to [0, 1, 2]. */
  readonly stdio?: readonly number[];
  /** Receives one line per system call with decoded arguments and result. */
  readonly strace?: (line: string) => void;
  /** Sends signals into the running sandbox, such as SIGINT when the user presses Ctrl-C. */
  readonly controller?: SandboxController;
}

/**
 * Sends signals into a running sandbox from outside, as a terminal does: pass one to runSandbox
 * in `options.controller`. Signals sent before the sandbox starts are delivered when it starts;
 * signals sent after it ended are dropped.
 */
export class SandboxController {
  private kernel: Kernel | undefined;
  private readonly early: Array<() => void> = [];

  /** Sends `signal` (a number such as 2 for SIGINT) to the sandbox's foreground process group. */
  signalForeground(signal: number): void {
    if (!Number.isInteger(signal) || signal < 1 || signal > 64) {
      throw new RangeError(`signalForeground: invalid signal ${String(signal)}; pass a number from 1 to 64, such as 2 for SIGINT`);
    }
    if (this.kernel === undefined) {
      this.early.push(() => this.signalForeground(signal));
      return;
    }
    const kernel = this.kernel;
    for (const group of kernel.processGroup(kernel.foregroundPgid)) sendGroupSignal(group, signal);
  }

  /**
   * Sends `signal` (a number such as 10 for SIGUSR1) to the sandbox's init process only, as
   * kill(2) with init's pid would.
   */
  signalInit(signal: number): void {
    if (!Number.isInteger(signal) || signal < 1 || signal > 64) {
      throw new RangeError(`signalInit: invalid signal ${String(signal)}; pass a number from 1 to 64, such as 10 for SIGUSR1`);
    }
    if (this.kernel === undefined) {
      this.early.push(() => this.signalInit(signal));
      return;
    }
    const init = this.kernel.init;
    if (init !== undefined) sendGroupSignal(init, signal);
  }

  /**
   * Puts the sandbox's terminal settings back to what they were when it started, at once and
   * synchronously, for a process 'exit' handler. runSandbox does this itself when it returns or
   * throws; this covers exits that skip it.
   */
  restoreTerminal(): void {
    this.kernel?.terminal?.restore();
  }

  /** Connects the controller to a started kernel; used by runSandbox. */
  attach(kernel: Kernel | undefined): void {
    this.kernel = kernel;
    if (kernel === undefined) return;
    for (const send of this.early.splice(0)) send();
  }
}

export interface SandboxResult {
  /** The exit code, or 128 + N when signal N killed the program, as a shell reports it. */
  readonly status: number;
  readonly exitCode?: number;
  readonly signal?: number;
}

/** A problem with the program or the options, described in one line for users. */
export class SandboxError extends Error {
  /**
   * @param errno The Linux errno with which execve would fail when the program cannot be run
   *   (ENOENT when it is not found), so that callers can tell "not found" from "cannot execute".
   */
  constructor(message: string, readonly errno?: number) {
    super(message);
    this.name = 'SandboxError';
  }
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const ERRNO_MESSAGES: Partial<Record<number, string>> = {
  [Errno.ENOENT]: 'no such file or directory',
  [Errno.EACCES]: 'permission denied',
  [Errno.ENOTDIR]: 'not a directory',
  [Errno.EISDIR]: 'is a directory',
  [Errno.ELOOP]: 'too many levels of symbolic links',
  [Errno.ENAMETOOLONG]: 'file name too long',
  [Errno.ENOEXEC]: 'exec format error',
  [Errno.ENOMEM]: 'out of memory',
};

function describeErrno(errno: number): string {
  return ERRNO_MESSAGES[errno] ?? errnoName(errno);
}

function checkOptions(options: SandboxOptions): void {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('runSandbox: pass an options object such as { argv: ["/bin/true"] }');
  }
  const { argv, env, stdio } = options;
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((arg) => typeof arg === 'string') || argv[0] === '') {
    throw new SandboxError('missing program: argv must be a non-empty list of strings, such as ["/bin/ls", "-l"]');
  }
  if (env !== undefined && (!Array.isArray(env) || !env.every((entry) => typeof entry === 'string'))) {
    throw new SandboxError('env must be a list of "NAME=VALUE" strings');
  }
  if (stdio !== undefined && (!Array.isArray(stdio) || !stdio.every((fd) => Number.isInteger(fd) && fd >= 0))) {
    throw new SandboxError('stdio must be a list of host file descriptors, such as [0, 1, 2]');
  }
}

/** Converts a JavaScript string into the VFS's path form: latin1, one character per UTF-8 byte. */
function toVfsPath(path: string): string {
  return Buffer.from(path, 'utf8').toString('latin1');
}

/** Finds the program as execvp does: a name with "/" is a path, others are looked up in PATH. */
function findProgram(vfs: Vfs, fs: FsContext, name: string, env: readonly string[]): string {
  if (name.includes('/')) return name;
  const pathEntry = env.find((entry) => entry.startsWith('PATH='));
  const directories = (pathEntry === undefined ? DEFAULT_PATH : pathEntry.slice(5)).split(':');
  for (const directory of directories) {
    const candidate = `${directory === '' ? '.' : directory}/${name}`;
    try {
      const stat = vfs.stat(fs, AT_FDCWD, toVfsPath(candidate), true);
      if (isRegular(stat.mode) && (stat.mode & 0o111) !== 0) return candidate;
    } catch (error) {
      if (!(error instanceof SysError)) throw error;
    }
  }
  throw new SandboxError(`${name}: command not found in PATH`, Errno.ENOENT);
}

/** Matches the /proc links to a process's executable, which the first program cannot use. */
const PROC_EXE_LINK = /^\/proc\/(self|thread-self|\d+)(\/task\/\d+)?\/exe$/;

/**
 * Checks that `path` names a file the sandbox can execute, before the platform starts, so that
 * bad input costs little. Throws SandboxError with the reason.
 */
function checkProgram(vfs: Vfs, fs: FsContext, path: string): void {
  let executable: ReturnType<Vfs['openExecutable']>;
  try {
    executable = vfs.openExecutable(fs, toVfsPath(path));
  } catch (error) {
    if (!(error instanceof SysError)) throw error;
    if (error.errno === Errno.EACCES) {
      const stat = vfs.stat(fs, AT_FDCWD, toVfsPath(path), true);
      if (isDir(stat.mode)) throw new SandboxError(`${path}: is a directory`, error.errno);
    }
    if (error.errno === Errno.ENOENT && PROC_EXE_LINK.test(path)) {
      // As for a Linux process that has no executable (a kernel thread), the link leads nowhere.
      throw new SandboxError(`${path}: no such file or directory, because the sandbox runs no program yet for it to refer to; name the program by its path`, error.errno);
    }
    throw new SandboxError(`${path}: ${describeErrno(error.errno)}`, error.errno);
  }
  executable.file.decRef();
}

/**
 * Gives each stdio descriptor that refers to a host terminal the sandbox's Terminal for it, one
 * per terminal device, and returns them. Descriptors of other character devices are left alone.
 */
function attachTerminals(kernel: Kernel, fdTable: FdTable): Terminal[] {
  const byDevice = new Map<bigint, Terminal>();
  for (const fd of fdTable.openFds()) {
    const file = fdTable.get(fd);
    if (!(file instanceof HostStream) || file.rdev === undefined) continue;
    let terminal = byDevice.get(file.rdev);
    if (terminal === undefined) {
      terminal = Terminal.forDescriptor(kernel, file.rdev, file.hostFd);
      if (terminal === undefined) continue;
      byDevice.set(file.rdev, terminal);
    }
    file.terminal = terminal;
  }
  return [...byDevice.values()];
}

/** Runs the cleanup steps in order, all of them even when one throws; rethrows the first error. */
function releaseAll(steps: Array<() => void>): void {
  let first: unknown;
  for (const step of steps) {
    try {
      step();
    } catch (error) {
      first ??= error;
    }
  }
  if (first !== undefined) throw first;
}

function openPlatform(name: string): Platform {
  try {
    return createPlatform(name);
  } catch (error) {
    if (error instanceof PlatformUnavailableError) throw new SandboxError(error.message);
    throw error;
  }
}

/** Runs a program in a new sandbox and returns how it ended. Throws SandboxError for bad input. */
export async function runSandbox(options: SandboxOptions): Promise<SandboxResult> {
  checkOptions(options);
  const argv = [...options.argv];
  const env = [...(options.env ?? [])];
  const root = options.root ?? '/';

  const tmpfsMounts = options.tmpfsMounts?.map(toVfsPath);
  for (const path of tmpfsMounts ?? []) {
    const problem = tmpfsMountProblem(path);
    if (problem !== undefined) throw new SandboxError(problem);
  }

  let vfs: Vfs;
  try {
    vfs = new Vfs({ hostRoot: root, tmpfsMounts });
  } catch (error) {
    let reason = String(error);
    if (error instanceof Error) reason = error.message;
    if (error instanceof SysError) reason = describeErrno(error.errno);
    throw new SandboxError(`root directory ${root}: ${reason}`);
  }

  const cleanup: Array<() => void> = [() => vfs.close()];
  try {
    const fs = new FsContext();
    const cwd = options.cwd ?? '/';
    try {
      vfs.chdir(fs, toVfsPath(cwd));
    } catch (error) {
      if (!(error instanceof SysError)) throw error;
      throw new SandboxError(`working directory ${cwd}: ${describeErrno(error.errno)} inside the sandbox`);
    }

    const programPath = findProgram(vfs, fs, argv[0], env);
    checkProgram(vfs, fs, programPath);

    const platform = openPlatform(options.platform ?? (process.env.TSVISOR_PLATFORM || 'auto'));
    const kernel = new Kernel(platform, vfs, { strace: options.strace });
    cleanup.unshift(() => kernel.close());

    const addressSpace = platform.newAddressSpace();
    const mm = new MemoryManager(kernel.memoryFile, addressSpace, kernel.layout);
    holdMemory(mm);
    const fdTable = FdTable.withStdio(options.stdio ?? [0, 1, 2]);
    holdFdTable(fdTable);

    const tid = kernel.allocateTid();
    const init = new ThreadGroup(tid, undefined, SIGCHLD, hostResourceLimits());
    kernel.init = init;
    kernel.threadGroups.set(tid, init);

    // Init leads its own session and process group, so the first terminal on its stdio becomes
    // its controlling terminal, with init's group in the foreground.
    const terminals = attachTerminals(kernel, fdTable);
    cleanup.push(() => releaseAll(terminals.map((terminal) => () => terminal.close())));
    kernel.terminal = terminals[0];
    kernel.terminal?.makeControlling(init);
    const task = new Task(kernel, { tid, threadGroup: init, mm, fdTable, fs, exePath: '', creds: hostCredentials() });
    // Until the task runs, a failed load releases it here; once started, its loop's exit does.
    let started = false;
    cleanup.unshift(() => {
      if (started) return;
      task.release();
      fdTable.closeAll();
      mm.release();
      addressSpace.release();
    });

    // The first program goes through execve's "#!" handling, so a script runs as it would there.
    let resolved: ResolvedProgram;
    try {
      resolved = await resolveProgram(task, { path: toVfsPath(programPath), dirfd: AT_FDCWD, argv: argv.map(toVfsPath), envp: [] });
    } catch (error) {
      if (error instanceof ExecError) throw new SandboxError(`${programPath}: ${error.reason}`, error.errno);
      if (error instanceof SysError) throw new SandboxError(`${programPath}: ${describeErrno(error.errno)}`, error.errno);
      throw error;
    }
    cleanup.unshift(() => resolved.program.file.decRef());
    task.exePath = resolved.program.path;
    task.name = programPath.slice(programPath.lastIndexOf('/') + 1).slice(0, 15);

    try {
      await loadExecutable(task, resolved.program.file, { argv: resolved.argv, envp: env, execFn: resolved.filename });
    } catch (error) {
      if (error instanceof ExecError) throw new SandboxError(`${programPath}: ${error.reason}`, error.errno);
      if (error instanceof SysError) throw new SandboxError(`${programPath}: cannot load: ${describeErrno(error.errno)}`, error.errno);
      throw error;
    }

    started = true;
    cleanup.unshift(() => options.controller?.attach(undefined));
    startTask(task);
    options.controller?.attach(kernel);
    // Tasks that all wait on one another (a futex, an empty pipe, pause()) hold no host handle, so
    // without this timer Node would find its event loop empty and exit in the middle of the run.
    const keepAlive = setInterval(() => {}, 0x7fffffff);
    let exit: Awaited<typeof kernel.initExit>;
    try {
      exit = await kernel.initExit;
    } catch (error) {
      if (error instanceof SwitchError) throw new SandboxError(error.message);
      throw error;
    } finally {
      clearInterval(keepAlive);
      await kernel.shutdown();
    }
    if (exit.signal !== undefined) return { status: 128 + exit.signal, signal: exit.signal };
    const code = exit.code ?? 0;
    return { status: code, exitCode: code };
  } finally {
    releaseAll(cleanup);
  }
}
