/**
 * Formats one system call the way `--strace` prints it: name, decoded arguments and result, for
 * example `openat(AT_FDCWD, "/etc/passwd", 0x0, 0) = 3`. Arguments are decoded after the call
 * returned, so read buffers show what was read and write buffers what was written.
 */
import { errnoName } from '../errno.js';
import type { ArgFormat, SyscallEntry } from '../syscalls/table.js';
import { syscallName } from '../syscalls/table.js';
import type { Task } from './task.js';

const AT_FDCWD = -100;
const MAX_STRING = 64;

/** Calls whose result is an address, printed in hexadecimal. */
const ADDRESS_RESULTS = new Set(['mmap', 'mremap', 'brk', 'shmat']);

const SIGNAL_NAMES = [
  '', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL', 'SIGUSR1',
  'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP',
  'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS',
];

/** Returns the name of signal `signo`, such as "SIGSEGV", or "SIGRT<n>" for real-time signals. */
export function signalName(signo: number): string {
  if (signo > 0 && signo < SIGNAL_NAMES.length) return SIGNAL_NAMES[signo];
  if (signo >= 32 && signo <= 64) return `SIGRT${signo - 32}`;
  return String(signo);
}

function hex(value: number): string {
  return value < 0 ? `-0x${(-value).toString(16)}` : `0x${value.toString(16)}`;
}

function quote(bytes: Uint8Array, truncated: boolean): string {
  let text = '"';
  for (const byte of bytes) {
    if (byte === 0x22 || byte === 0x5c) text += `\\${String.fromCharCode(byte)}`;
    else if (byte === 0x0a) text += '\\n';
    else if (byte === 0x09) text += '\\t';
    else if (byte >= 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else text += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `${text}"${truncated ? '...' : ''}`;
}

function formatString(task: Task, addr: number): string {
  if (addr === 0) return 'NULL';
  try {
    const text = task.mm.readCString(addr, 4096);
    const bytes = Buffer.from(text);
    return quote(bytes.subarray(0, MAX_STRING), bytes.length > MAX_STRING);
  } catch {
    return hex(addr);
  }
}

function formatBuffer(task: Task, addr: number, length: number): string {
  if (addr === 0) return 'NULL';
  const shown = Math.max(0, Math.min(length, MAX_STRING));
  try {
    return quote(task.mm.copyIn(addr, shown), length > MAX_STRING);
  } catch {
    return hex(addr);
  }
}

function formatArg(task: Task, format: ArgFormat, args: readonly number[], index: number, result: number): string {
  const value = args[index];
  switch (format) {
    case 'int':
      return String(value);
    case 'hex':
    case 'flags':
      return hex(value);
    case 'fd':
      return (value | 0) === AT_FDCWD ? 'AT_FDCWD' : String(value | 0);
    case 'path':
    case 'string':
      return formatString(task, value);
    case 'buffer': {
      // The length is the next argument; after a successful call only `result` bytes are valid.
      const length = result >= 0 ? Math.min(result, args[index + 1] ?? 0) : 0;
      return formatBuffer(task, value, length);
    }
    case 'ptr':
      return value === 0 ? 'NULL' : hex(value);
    case 'signal':
      return signalName(value | 0);
  }
}

/** Formats a completed call. `result` is undefined for a call that does not return (exit_group). */
export function formatSyscall(task: Task, nr: number, entry: SyscallEntry | undefined, args: readonly number[], result: number | undefined): string {
  const name = entry?.name ?? syscallName(nr);
  const formats = entry?.args;
  // A registered call without formats takes no arguments; an unknown call shows its first three raw.
  const printed = formats === undefined
    ? (entry?.handler === undefined ? args.slice(0, 3).map(hex) : [])
    : formats.map((format, index) => formatArg(task, format, args, index, result ?? -1));

  let outcome: string;
  if (result === undefined) outcome = '?';
  else if (result < 0 && result > -4096) outcome = `-1 ${errnoName(-result)}`;
  else outcome = ADDRESS_RESULTS.has(name) ? hex(result) : String(result);
  return `[${task.tid}] ${name}(${printed.join(', ')}) = ${outcome}`;
}
