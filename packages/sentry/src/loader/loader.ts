/**
 * The ELF loader for static executables. It maps each PT_LOAD segment by copying its file bytes
 * into fresh memory-file pages, so the bss stays zero. Then it sets up the heap after the image,
 * the stack with argv, envp and the auxiliary vector, and the registers at the entry point.
 *
 * A segment's first page also receives the file bytes before the segment's start, as a file mapping
 * would, because programs find their own ELF and program headers there (AT_PHDR).
 */
import { Errno } from '../errno.js';
import { STACK_SIZE } from '../kernel/kernel.js';
import type { Task } from '../kernel/task.js';
import { PAGE_SIZE } from '../memory/memory-file.js';
import { Prot } from '../mm/flags.js';
import { pageDown, pageUp } from '../mm/memory-manager.js';
import type { FileDescription } from '../vfs/file.js';
import {
  EHDR_SIZE, ExecError, PF_R, PF_W, PF_X, PHDR_SIZE, PT_INTERP, PT_LOAD, PT_PHDR,
  parseElfHeader, parseProgramHeaders, type ProgramHeader,
} from './elf.js';
import { hostCapabilities } from './host-auxv.js';
import { AuxType, writeInitialStack } from './initial-stack.js';

/**
 * Load address of position-independent executables: Linux's ELF_ET_DYN_BASE on x86-64 (two thirds
 * of the 47-bit address space) without address space randomization.
 */
const PIE_BASE = 0x555555554000;

const CLOCK_TICKS_PER_SECOND = 100;

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
  if (segment.filesz > segment.memsz || segment.offset % PAGE_SIZE !== segment.vaddr % PAGE_SIZE || !mm.inUserRange(start, end - start)) {
    throw new ExecError(Errno.ENOEXEC, 'invalid ELF segment layout');
  }

  mm.unmap(start, end);
  mm.mapAnonymous(start, end - start, protection(segment.flags), { populate: true });

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

/**
 * Loads the static executable `file` into `task`'s empty memory manager and points the task's
 * registers at its entry. Throws ExecError for files that cannot run.
 */
export async function loadExecutable(task: Task, file: FileDescription, args: ExecArguments): Promise<void> {
  const header = new Uint8Array(EHDR_SIZE);
  const headerLength = await readAt(task, file, header, 0);
  const elf = parseElfHeader(header.subarray(0, headerLength));

  const table = new Uint8Array(elf.phnum * PHDR_SIZE);
  if (await readAt(task, file, table, elf.phoff) !== table.length) {
    throw new ExecError(Errno.ENOEXEC, 'truncated ELF program header table');
  }
  const segments = parseProgramHeaders(table, elf.phnum);
  if (segments.some((segment) => segment.type === PT_INTERP)) {
    throw new ExecError(Errno.ENOEXEC, 'is dynamically linked; only static executables are supported so far');
  }
  const loads = segments.filter((segment) => segment.type === PT_LOAD);
  if (loads.length === 0) throw new ExecError(Errno.ENOEXEC, 'has no loadable segment');

  const bias = elf.positionIndependent ? PIE_BASE - pageDown(loads[0].vaddr) : 0;
  let imageEnd = 0;
  for (const segment of loads) {
    await mapSegment(task, file, segment, bias);
    imageEnd = Math.max(imageEnd, segment.vaddr + bias + segment.memsz);
  }
  task.mm.setBrkStart(imageEnd);

  const phdr = findProgramHeaders(segments, loads, elf.phoff);
  const kernel = task.kernel;
  task.mm.mapAnonymous(kernel.stackTop - STACK_SIZE, STACK_SIZE, Prot.READ | Prot.WRITE, { name: '[stack]' });
  const { hwcap, hwcap2 } = hostCapabilities();
  const creds = task.creds;
  const rsp = writeInitialStack(task.mm, kernel.stackTop, {
    argv: args.argv,
    envp: args.envp,
    execFn: args.execFn,
    auxv: [
      [AuxType.AT_HWCAP, hwcap],
      [AuxType.AT_PAGESZ, PAGE_SIZE],
      [AuxType.AT_CLKTCK, CLOCK_TICKS_PER_SECOND],
      [AuxType.AT_PHDR, phdr + bias],
      [AuxType.AT_PHENT, PHDR_SIZE],
      [AuxType.AT_PHNUM, elf.phnum],
      [AuxType.AT_BASE, 0],
      [AuxType.AT_FLAGS, 0],
      [AuxType.AT_ENTRY, elf.entry + bias],
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
  regs.rip = elf.entry + bias;
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
