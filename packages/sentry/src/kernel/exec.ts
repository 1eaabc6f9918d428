/**
 * execve: replaces the program a thread group runs. The new image is loaded into a new memory
 * manager and address space, so a file that cannot run leaves the caller untouched and gets an
 * error. Once the image is loaded the call cannot fail: the other threads of the group exit, the
 * descriptor table stops being shared and loses its close-on-exec descriptors, and caught
 * signals return to their default action.
 *
 * A file that starts with "#!" is a script: the interpreter named on that line runs instead, with
 * the optional argument from the line and the script's path before the original arguments.
 */
import { Errno, errnoName, fail, SysError } from '../errno.js';
import { ExecError } from '../loader/elf.js';
import { loadExecutable } from '../loader/loader.js';
import { MemoryManager } from '../mm/memory-manager.js';
import type { FileDescription } from '../vfs/file.js';
import { AT_FDCWD } from '../vfs/flags.js';
import { dropFdTable, dropMemory, holdFdTable, holdMemory, userCount } from './shared-resources.js';
import { resetSignalsForExec } from './signals/state.js';
import type { Task } from './task.js';

/** Bytes of the file's start that decide its format, and the longest "#!" line (BINPRM_BUF_SIZE). */
const BINPRM_BUF_SIZE = 256;

/** How many interpreters may be chained ("#!" scripts run by "#!" scripts), as Linux allows. */
const MAX_INTERPRETER_DEPTH = 4;


export interface ExecRequest {
  /** Path of the program, in the VFS's latin1 form. */
  readonly path: string;
  readonly dirfd: number;
  readonly argv: readonly string[];
  readonly envp: readonly string[];
  /** AT_EMPTY_PATH: run the file `dirfd` refers to. */
  readonly emptyPath?: boolean;
  /** AT_SYMLINK_NOFOLLOW: a final symbolic link fails with ELOOP. */
  readonly noFollow?: boolean;
}

export interface Program {
  readonly file: FileDescription;
  /** Canonical sandbox path, for /proc/self/exe. */
  readonly path: string;
}

function openProgram(task: Task, request: ExecRequest, path: string, dirfd: number): Program {
  const vfs = task.kernel.vfs;
  if (request.emptyPath && path === '') {
    const file = task.fdTable.get(dirfd);
    const reopened = vfs.openExecutable(task.fs, file.path, task);
    return reopened;
  }
  if (path === '') fail(Errno.ENOENT);
  const resolved = vfs.resolve(task.fs, dirfd, path, !request.noFollow, task);
  return vfs.openExecutable(task.fs, resolved.path, task);
}

async function readStart(task: Task, file: FileDescription): Promise<Buffer> {
  const start = Buffer.alloc(BINPRM_BUF_SIZE);
  let done = 0;
  while (done < start.length) {
    const pending = file.pread(task, start.subarray(done), done);
    const count = typeof pending === 'number' ? pending : await pending;
    if (count === 0) break;
    done += count;
  }
  return start.subarray(0, done);
}

/**
 * Parses a "#!" line: the interpreter and at most one argument (the rest of the line, trimmed),
 * as Linux does. Returns undefined when the file is not a script.
 */
export function parseInterpreterLine(start: Uint8Array): { interpreter: string; argument?: string } | undefined {
  if (start.length < 2 || start[0] !== 0x23 || start[1] !== 0x21) return undefined;
  let end = start.indexOf(0x0a);
  if (end < 0) end = start.length;
  const line = Buffer.from(start.subarray(2, end)).toString('latin1').replace(/[ \t]+$/, '').replace(/^[ \t]+/, '');
  if (line === '') fail(Errno.ENOEXEC);
  const space = line.search(/[ \t]/);
  if (space < 0) return { interpreter: line };
  const argument = line.slice(space).trim();
  return argument === '' ? { interpreter: line.slice(0, space) } : { interpreter: line.slice(0, space), argument };
}

/** Converts a latin1 VFS string into the JavaScript string the initial stack writer expects. */
function toArgument(latin1: string): string {
  // NOTE: the loader writes arguments as UTF-8, so a byte sequence that is not valid UTF-8 does
  // not survive execve unchanged.
  return Buffer.from(latin1, 'latin1').toString('utf8');
}

/** Replaces the caller's state once the image is loaded; nothing here returns an error. */
function commitExec(task: Task, program: Program, mm: MemoryManager, filename: string): void {
  const group = task.threadGroup;

  // NOTE: a thread other than the leader keeps its own thread id after execve, where Linux gives
  // it the thread group id, so its gettid no longer equals getpid.
  for (const other of group.tasks) {
    if (other !== task) other.requestExit();
  }

  const oldMm = task.mm;
  task.mm = mm;
  holdMemory(mm);
  dropMemory(oldMm);

  if (userCount(task.fdTable) > 1) {
    const own = task.fdTable.fork();
    holdFdTable(own);
    dropFdTable(task.fdTable);
    task.fdTable = own;
  }
  task.fdTable.closeOnExec();

  resetSignalsForExec(task);

  // NOTE: set-user-ID and set-group-ID bits are not honoured, so the effective ids stay as they are.
  // Linux still copies them into the saved and file system ids.
  task.creds.suid = task.creds.fsuid = task.creds.euid;
  task.creds.sgid = task.creds.fsgid = task.creds.egid;

  task.exePath = program.path;
  task.name = filename.slice(filename.lastIndexOf('/') + 1).slice(0, 15);
  task.clearChildTid = 0;
  task.robustListHead = 0;
  task.robustListLength = 0;
  group.execed = true;
  task.vforkDone?.();
  task.vforkDone = undefined;
}

/** The file execve finally loads, once "#!" lines are followed, and the arguments it receives. */
export interface ResolvedProgram {
  readonly program: Program;
  /** argv with the interpreters and their arguments in front, as JavaScript strings. */
  readonly argv: string[];
  /** The path the loaded file was named by, in the VFS's latin1 form, for AT_EXECFN. */
  readonly filename: string;
}

/**
 * Opens the program `request` names and follows "#!" lines to the ELF file that runs it. The
 * caller must decRef `program.file`. Throws SysError when the program cannot be opened, and
 * ExecError (with the errno execve returns) when an interpreter cannot.
 */
export async function resolveProgram(task: Task, request: ExecRequest): Promise<ResolvedProgram> {
  let path = request.path;
  let dirfd = request.dirfd;
  let argv = request.argv.map(toArgument);
  let depth = 0;
  let script: string | undefined;

  for (;;) {
    let program: Program;
    try {
      program = openProgram(task, request, path, dirfd);
    } catch (error) {
      if (script === undefined || !(error instanceof SysError)) throw error;
      throw new ExecError(error.errno, `cannot run its interpreter ${path} (${errnoName(error.errno)})`);
    }

    let line: ReturnType<typeof parseInterpreterLine>;
    try {
      line = parseInterpreterLine(await readStart(task, program.file));
    } catch (error) {
      program.file.decRef();
      throw error;
    }
    if (line === undefined) return { program, argv, filename: path };
    program.file.decRef();

    if (++depth > MAX_INTERPRETER_DEPTH) fail(Errno.ELOOP);
    script = request.emptyPath && path === '' ? program.path : path;
    argv = [toArgument(line.interpreter), ...(line.argument === undefined ? [] : [toArgument(line.argument)]), toArgument(script), ...argv.slice(1)];
    path = line.interpreter;
    dirfd = AT_FDCWD;
  }
}

/**
 * Runs execve for `task`. Resolves 0 once the new program is in place (its registers are set and
 * the result in rax is the 0 a new program starts with), or throws SysError.
 */
export async function execve(task: Task, request: ExecRequest): Promise<number> {
  let resolved: ResolvedProgram;
  try {
    resolved = await resolveProgram(task, request);
  } catch (error) {
    if (error instanceof ExecError) throw new SysError(error.errno);
    throw error;
  }
  try {
    await loadProgram(task, resolved.program, resolved.argv, request, resolved.filename);
    return 0;
  } finally {
    resolved.program.file.decRef();
  }
}

async function loadProgram(task: Task, program: Program, argv: string[], request: ExecRequest, filename: string): Promise<void> {
  const kernel = task.kernel;
  const oldMm = task.mm;
  const savedRegisters = new Uint8Array(task.regs.bytes);
  const mm = new MemoryManager(kernel.memoryFile, kernel.platform.newAddressSpace(), kernel.layout);
  task.mm = mm;
  try {
    await loadExecutable(task, program.file, { argv, envp: request.envp.map(toArgument), execFn: filename });
  } catch (error) {
    task.mm = oldMm;
    task.regs.bytes.set(savedRegisters);
    mm.release();
    mm.addressSpace.release();
    if (error instanceof ExecError) throw new SysError(error.errno);
    throw error;
  }
  if (task.exiting) {
    // Killed while loading: the old image is what exits.
    task.mm = oldMm;
    mm.release();
    mm.addressSpace.release();
    return;
  }
  task.mm = oldMm;
  commitExec(task, program, mm, filename);
}
