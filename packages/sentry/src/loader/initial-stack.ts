/**
 * The initial stack of a new program, as the System V x86-64 ABI and Linux lay it out. From the
 * top of the stack down:
 *
 *   8 zero bytes, the AT_EXECFN string, the environment strings, the argument strings,
 *   the AT_PLATFORM string ("x86_64"), 16 AT_RANDOM bytes, padding to 16 bytes,
 *   auxv pairs ending with AT_NULL, envp pointers and NULL, argv pointers and NULL, argc  <- rsp
 *
 * rsp ends up 16-byte aligned, as the ABI requires at process entry.
 */
import { randomFillSync } from 'node:crypto';
import type { MemoryManager } from '../mm/memory-manager.js';

export const AuxType = {
  AT_NULL: 0,
  AT_PHDR: 3,
  AT_PHENT: 4,
  AT_PHNUM: 5,
  AT_PAGESZ: 6,
  AT_BASE: 7,
  AT_FLAGS: 8,
  AT_ENTRY: 9,
  AT_UID: 11,
  AT_EUID: 12,
  AT_GID: 13,
  AT_EGID: 14,
  AT_PLATFORM: 15,
  AT_HWCAP: 16,
  AT_CLKTCK: 17,
  AT_SECURE: 23,
  AT_RANDOM: 25,
  AT_HWCAP2: 26,
  AT_EXECFN: 31,
} as const;

export interface InitialStack {
  readonly argv: readonly string[];
  readonly envp: readonly string[];
  /** The path the program was executed as, in latin1 (one character per byte), for AT_EXECFN. */
  readonly execFn: string;
  /** Auxiliary vector entries; AT_PLATFORM, AT_RANDOM, AT_EXECFN and AT_NULL are added here. */
  readonly auxv: ReadonlyArray<readonly [number, number]>;
}

/** Writes the initial stack below `stackTop` and returns the initial rsp. */
export function writeInitialStack(mm: MemoryManager, stackTop: number, init: InitialStack): number {
  const strings: Buffer[] = [];
  let cursor = stackTop - 8;

  const place = (bytes: Buffer): number => {
    cursor -= bytes.length;
    strings.push(bytes);
    return cursor;
  };
  const placeString = (text: string): number => place(Buffer.from(`${text}\0`));

  const execFn = place(Buffer.from(`${init.execFn}\0`, 'latin1'));
  // Placed last first, so that argv[0] ends up at the lowest address, followed by the rest in order.
  const envAddresses = [...init.envp].reverse().map(placeString).reverse();
  const envStart = cursor;
  const argAddresses = [...init.argv].reverse().map(placeString).reverse();
  mm.argStart = cursor;
  mm.argEnd = mm.envStart = envStart;
  mm.envEnd = execFn;
  const platform = placeString('x86_64');
  const randomBytes = Buffer.alloc(16);
  randomFillSync(randomBytes);
  const random = place(randomBytes);

  const auxv: Array<readonly [number, number]> = [
    ...init.auxv,
    [AuxType.AT_PLATFORM, platform],
    [AuxType.AT_RANDOM, random],
    [AuxType.AT_EXECFN, execFn],
    [AuxType.AT_NULL, 0],
  ];
  const words = 1 + argAddresses.length + 1 + envAddresses.length + 1 + auxv.length * 2;
  let rsp = cursor - words * 8;
  rsp -= rsp % 16;

  const vector = Buffer.alloc(words * 8);
  let index = 0;
  const push = (value: number): void => {
    vector.writeBigUInt64LE(BigInt(value), index * 8);
    index++;
  };
  push(init.argv.length);
  for (const addr of argAddresses) push(addr);
  push(0);
  for (const addr of envAddresses) push(addr);
  push(0);
  for (const [type, value] of auxv) {
    push(type);
    push(value);
  }

  // The strings were pushed from high to low addresses; lay them out from low to high.
  const stringBytes = Buffer.concat(strings.reverse());
  mm.poke(cursor, stringBytes);
  mm.poke(rsp, vector);
  return rsp;
}
