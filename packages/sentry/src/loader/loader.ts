/**
 * The ELF loader. It maps each PT_LOAD segment by copying its file bytes into fresh memory-file
 * pages, so the bss stays zero. A dynamically linked program (one with PT_INTERP) gets its
 * interpreter, ld.so, loaded the same way below the mmap area. The task starts at the
 * interpreter's entry, and ld.so finds the program through AT_PHDR, AT_ENTRY and AT_BASE. Then the
 * loader sets up the heap after the program's image, the stack with argv, envp and the auxiliary
 * vector, and the registers at the entry point. No vDSO is provided (no AT_SYSINFO_EHDR), so libc
 * makes real clock_gettime and gettimeofday calls, which the sentry answers.
 *
 * A segment's first page also receives the file bytes before the segment's start, as a file mapping
 * would, because programs find their own ELF and program headers there (AT_PHDR).
 */
import { Errno, errnoName, SysError } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { PAGE_SIZE } from '../memory/memory-file.js';
import { Rlimit } from '../kernel/limits.js';
import { Prot } from '../mm/flags.js';
import { computeLayout } from '../mm/layout.js';
import { PATH_MAX } from '../vfs/flags.js';
import { pageDown, pageUp } from '../mm/memory-manager.js';
import type { FileDescription } from '../vfs/file.js';
import {
  EHDR_SIZE, ExecError, PF_R, PF_W, PF_X, PHDR_SIZE, PT_GNU_STACK, PT_INTERP, PT_LOAD, PT_PHDR,
  parseElfHeader, parseProgramHeaders, type ElfHeader, type ProgramHeader,
} from './elf.js';
import { hostCapabilities } from './host-auxv.js';
import { AuxType, writeInitialStack } from './initial-stack.js';

/**
 * Load address of position-independent executables: Linux's ELF_ET_DYN_BASE on x86-64 (two thirds
 * of the 47-bit address space) without address space randomization.
 */
const PIE_BASE = 0x555555554000;

const CLOCK_TICKS_PER_SECOND = 100;

/** The main stack's first size; it grows on faults below it up to the stack limit, as on Linux. */
const INITIAL_STACK_SIZE = 128 * 1024;

export interface ExecArguments {
  readonly argv: readonly string[];
  readonly envp: readonly string[];
  /** The path the program was executed as (latin1, like every VFS path), for AT_EXECFN. */
  readonly execFn: string;
}

/** Reads exactly `length` bytes at `offset`, or fewer at end of file. */
async function readAt(task: Task, file: FileDescription, dst: Uint8Array, offset: number): Promise<number> {
  let done = 0;
  while (done < dst.length) {
    const pending = file.pread(task, dst.subarray(done), offset + done);
    const count = typeof pending === 'number' ? pending : await pending;
    if (count === 0) break;
    done += count;
  }
  return done;
}

function protection(flags: number): number {
  return ((flags & PF_R) !== 0 ? Prot.READ : 0) | ((flags & PF_W) !== 0 ? Prot.WRITE : 0) | ((flags & PF_X) !== 0 ? Prot.EXEC : 0);
}

async function mapSegment(task: Task, file: FileDescription, segment: ProgramHeader, bias: number): Promise<void> {
  const mm = task.mm;
  const start = pageDown(segment.vaddr + bias);
  const end = pageUp(segment.vaddr + bias + segment.memsz);
  const lead = (segment.vaddr + bias) - start;
  if (segment.filesz > segment.memsz || segment.offset % PAGE_SIZE !== segment.vaddr % PAGE_SIZE) {
    throw new ExecError(Errno.ENOEXEC, 'invalid ELF segment layout');
  }
  if (!mm.inUserRange(start, end - start)) {
    const { minAddress, maxAddress } = mm.layout;
    throw new ExecError(
      Errno.EINVAL,
      `a segment at 0x${start.toString(16)}-0x${end.toString(16)} lies outside the sandbox's usable address range ` +
        `0x${minAddress.toString(16)}-0x${maxAddress.toString(16)}`,
    );
  }

  mm.unmap(start, end);
  const { dev, ino } = file.stat();
  mm.mapAnonymous(start, end - start, protection(segment.flags), {
    populate: true,
    name: file.path,
    file: { dev, ino, offset: segment.offset - lead },
  });

  const views: Uint8Array[] = [];
  mm.views(start, lead + segment.filesz, (view) => views.push(view));
  let fileOffset = segment.offset - lead;
  for (const view of views) {
    if (await readAt(task, file, view, fileOffset) !== view.length) {
      throw new ExecError(Errno.ENOEXEC, 'truncated ELF file: a segment extends past the end of the file');
    }
    fileOffset += view.length;
  }
}

/** An ELF file whose segments are mapped, with addresses already biased by its load address. */
interface LoadedImage {
  readonly entry: number;
  /** Address of the program header table in memory. */
  readonly phdr: number;
  readonly phnum: number;
  /** First address past the highest segment. */
  readonly end: number;
  /** The load bias, which ld.so receives as AT_BASE. */
  readonly bias: number;
  /** The PT_INTERP path (latin1), for dynamically linked programs. */
  readonly interpreter?: string;
  /** PT_GNU_STACK requests an executable stack, or is absent, which means the same on x86-64. */
  readonly execStack: boolean;
}

async function readHeaders(task: Task, file: FileDescription): Promise<{ elf: ElfHeader; segments: ProgramHeader[] }> {
  const header = new Uint8Array(EHDR_SIZE);
  const headerLength = await readAt(task, file, header, 0);
  const elf = parseElfHeader(header.subarray(0, headerLength));

  const table = new Uint8Array(elf.phnum * PHDR_SIZE);
  if (await readAt(task, file, table, elf.phoff) !== table.length) {
    throw new ExecError(Errno.ENOEXEC, 'truncated ELF program header table');
  }
  return { elf, segments: parseProgramHeaders(table, elf.phnum) };
}

async function readInterpreterPath(task: Task, file: FileDescription, segment: ProgramHeader): Promise<string> {
  if (segment.filesz < 2 || segment.filesz > PATH_MAX) throw new ExecError(Errno.ENOEXEC, 'invalid PT_INTERP segment');
  const bytes = Buffer.alloc(segment.filesz);
  if (await readAt(task, file, bytes, segment.offset) !== bytes.length || bytes[bytes.length - 1] !== 0) {
    throw new ExecError(Errno.ENOEXEC, 'invalid PT_INTERP segment');
  }
  return bytes.subarray(0, bytes.length - 1).toString('latin1');
}

/**
 * Maps the PT_LOAD segments of `file`. An ET_EXEC file is mapped at its link-time addresses. A
 * position-independent program goes at PIE_BASE. A position-independent interpreter goes at the
 * highest free range below the mmap top, where Linux puts ld.so too.
 */
async function loadImage(task: Task, file: FileDescription, placement: 'program' | 'interpreter'): Promise<LoadedImage> {
  const { elf, segments } = await readHeaders(task, file);
  const loads = segments.filter((segment) => segment.type === PT_LOAD);
  if (loads.length === 0) throw new ExecError(Errno.ENOEXEC, 'has no loadable segment');

  const interp = segments.find((segment) => segment.type === PT_INTERP);
  let interpreter: string | undefined;
  if (interp !== undefined) {
    if (placement === 'interpreter') throw new ExecError(Errno.ELIBBAD, 'the interpreter itself asks for an interpreter');
    interpreter = await readInterpreterPath(task, file, interp);
  }

  const first = pageDown(loads[0].vaddr);
  let bias = 0;
  if (elf.positionIndependent && placement === 'program') {
    bias = PIE_BASE - first;
  } else if (elf.positionIndependent) {
    const span = pageUp(Math.max(...loads.map((segment) => segment.vaddr + segment.memsz))) - first;
    const start = task.mm.findFree(span);
    if (start < 0) throw new ExecError(Errno.ENOMEM, 'no room in the address space for the interpreter');
    bias = start - first;
  }

  let end = 0;
  for (const segment of loads) {
    await mapSegment(task, file, segment, bias);
    end = Math.max(end, segment.vaddr + bias + segment.memsz);
  }

  const stack = segments.find((segment) => segment.type === PT_GNU_STACK);
  return {
    entry: elf.entry + bias,
    phdr: findProgramHeaders(segments, loads, elf.phoff) + bias,
    phnum: elf.phnum,
    end,
    bias,
    interpreter,
    execStack: stack === undefined || (stack.flags & PF_X) !== 0,
  };
}

/** Opens and maps the program's interpreter. Errors name the interpreter, because that is the file to fix. */
async function loadInterpreter(task: Task, path: string): Promise<LoadedImage> {
  let opened: { file: FileDescription; path: string };
  try {
    opened = task.kernel.vfs.openExecutable(task.fs, path, task);
  } catch (error) {
    if (!(error instanceof SysError)) throw error;
    throw new ExecError(error.errno, `cannot open its interpreter ${path} (${errnoName(error.errno)})`);
  }
  try {
    return await loadImage(task, opened.file, 'interpreter');
  } catch (error) {
    if (error instanceof ExecError) throw new ExecError(error.errno, `interpreter ${path}: ${error.reason}`);
    throw error;
  } finally {
    opened.file.decRef();
  }
}

/**
 * Loads the executable `file` (and its interpreter, if it names one) into `task`'s empty memory
 * manager and points the task's registers at the entry. Throws ExecError for files that cannot run.
 */
export async function loadExecutable(task: Task, file: FileDescription, args: ExecArguments): Promise<void> {
  const { minAddress, maxAddress } = task.mm.layout;
  task.mm.layout = computeLayout(minAddress, maxAddress, task.threadGroup.limits.get(Rlimit.STACK).cur);

  const program = await loadImage(task, file, 'program');
  task.mm.setBrkStart(program.end);
  const interpreter = program.interpreter === undefined ? undefined : await loadInterpreter(task, program.interpreter);

  const stackTop = task.mm.layout.stackTop;
  const stackProt = Prot.READ | Prot.WRITE | (program.execStack ? Prot.EXEC : 0);
  task.mm.mapAnonymous(stackTop - INITIAL_STACK_SIZE, INITIAL_STACK_SIZE, stackProt, { name: '[stack]', growsDown: true });
  const { hwcap, hwcap2 } = hostCapabilities();
  const creds = task.creds;
  const rsp = writeInitialStack(task.mm, stackTop, {
    argv: args.argv,
    envp: args.envp,
    execFn: args.execFn,
    auxv: [
      [AuxType.AT_HWCAP, hwcap],
      [AuxType.AT_PAGESZ, PAGE_SIZE],
      [AuxType.AT_CLKTCK, CLOCK_TICKS_PER_SECOND],
      [AuxType.AT_PHDR, program.phdr],
      [AuxType.AT_PHENT, PHDR_SIZE],
      [AuxType.AT_PHNUM, program.phnum],
      [AuxType.AT_BASE, interpreter?.bias ?? 0],
      [AuxType.AT_FLAGS, 0],
      [AuxType.AT_ENTRY, program.entry],
      [AuxType.AT_UID, creds.uid],
      [AuxType.AT_EUID, creds.euid],
      [AuxType.AT_GID, creds.gid],
      [AuxType.AT_EGID, creds.egid],
      [AuxType.AT_SECURE, 0],
      [AuxType.AT_HWCAP2, hwcap2],
    ],
  });

  const regs = task.regs;
  regs.reset();
  regs.rip = interpreter?.entry ?? program.entry;
  regs.rsp = rsp;
}

/** Virtual address (before bias) of the program header table, from PT_PHDR or the segment containing it. */
function findProgramHeaders(segments: ProgramHeader[], loads: ProgramHeader[], phoff: number): number {
  const own = segments.find((segment) => segment.type === PT_PHDR);
  if (own !== undefined) return own.vaddr;
  const containing = loads.find((segment) => phoff >= segment.offset && phoff < segment.offset + segment.filesz);
  if (containing === undefined) throw new ExecError(Errno.ENOEXEC, 'the program headers are not in a loadable segment');
  return containing.vaddr + (phoff - containing.offset);
}
