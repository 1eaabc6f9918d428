/**
 * Parsing of ELF64 headers (layouts from <elf.h>), and the checks that decide whether the sentry
 * can load a file: a little-endian x86-64 executable (ET_EXEC, or ET_DYN for position-independent
 * executables and for ld.so itself).
 */
import { Errno } from '../errno.js';

export const EHDR_SIZE = 64;
export const PHDR_SIZE = 56;

export const PT_LOAD = 1;
export const PT_INTERP = 3;
export const PT_PHDR = 6;
export const PT_GNU_STACK = 0x6474e551;

export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

const ET_EXEC = 2;
const ET_DYN = 3;
const EM_X86_64 = 62;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ELFDATA2MSB = 2;

/** A file the loader cannot run. `reason` completes "PATH: ..." in the message shown to users. */
export class ExecError extends Error {
  constructor(
    readonly errno: number,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'ExecError';
  }
}

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
}

export interface ElfHeader {
  /** ET_DYN: position-independent, loaded at a base address the loader picks. */
  readonly positionIndependent: boolean;
  readonly entry: number;
  readonly phoff: number;
  readonly phnum: number;
}

/** Checks the ELF identification and header in the file's first 64 bytes. */
export function parseElfHeader(bytes: Uint8Array): ElfHeader {
  if (bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new ExecError(Errno.ENOEXEC, 'not an ELF executable');
  }
  if (bytes.length < EHDR_SIZE) throw new ExecError(Errno.ENOEXEC, 'truncated ELF header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The header's own fields are in the file's byte order, so the order is checked before them.
  if (bytes[5] !== ELFDATA2LSB) {
    const order = bytes[5] === ELFDATA2MSB ? 'big-endian' : `unknown byte order ${bytes[5]}`;
    throw new ExecError(Errno.ENOEXEC, `wrong byte order (${order} ELF); only little-endian x86-64 executables can run`);
  }
  const machine = view.getUint16(18, true);
  if (bytes[4] !== ELFCLASS64 || machine !== EM_X86_64) {
    const bits = bytes[4] === ELFCLASS64 ? 64 : 32;
    throw new ExecError(Errno.ENOEXEC, `wrong architecture (${bits}-bit ELF for machine ${machine}); only x86-64 executables can run`);
  }

  const type = view.getUint16(16, true);
  if (type !== ET_EXEC && type !== ET_DYN) {
    throw new ExecError(Errno.ENOEXEC, `not an executable (ELF type ${type})`);
  }
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  if (phentsize !== PHDR_SIZE || phnum === 0 || phnum > 65536 / PHDR_SIZE) {
    throw new ExecError(Errno.ENOEXEC, 'invalid ELF program header table');
  }
  return {
    positionIndependent: type === ET_DYN,
    entry: Number(view.getBigUint64(24, true)),
    phoff: Number(view.getBigUint64(32, true)),
    phnum,
  };
}

/** Decodes the program header table. */
export function parseProgramHeaders(bytes: Uint8Array, count: number): ProgramHeader[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headers: ProgramHeader[] = [];
  for (let i = 0; i < count; i++) {
    const base = i * PHDR_SIZE;
    headers.push({
      type: view.getUint32(base, true),
      flags: view.getUint32(base + 4, true),
      offset: Number(view.getBigUint64(base + 8, true)),
      vaddr: Number(view.getBigUint64(base + 16, true)),
      filesz: Number(view.getBigUint64(base + 32, true)),
      memsz: Number(view.getBigUint64(base + 40, true)),
    });
  }
  return headers;
}
