/**
 * A stand-in Task for testing the file system calls without a platform: flat application memory
 * with the MemoryManager copy methods (EFAULT outside it), a descriptor table, a file system
 * context and a kernel that contains only the VFS and the task's own thread group.
 */
import { Errno, SysError } from '../src/errno.js';
import type { Task } from '../src/kernel/task.js';
import { Sys, type SyscallName } from '../src/syscalls/numbers.js';
import { syscallTable } from '../src/syscalls/table.js';
import { FdTable } from '../src/vfs/fd-table.js';
import { FsContext } from '../src/vfs/fs-context.js';
import { Vfs } from '../src/vfs/vfs.js';
import '../src/syscalls/dir.js';
import '../src/syscalls/fd.js';
import '../src/syscalls/ioctl.js';
import '../src/syscalls/open.js';
import '../src/syscalls/read-write.js';
import '../src/syscalls/sendfile.js';
import '../src/syscalls/stat.js';

export const MEMORY_BASE = 0x100000;
const MEMORY_SIZE = 4 * 1024 * 1024;

export class FakeMemory {
  readonly bytes = Buffer.alloc(MEMORY_SIZE);
  private next = MEMORY_BASE;

  private offset(addr: number, length: number): number {
    if (addr < MEMORY_BASE || addr + length > MEMORY_BASE + MEMORY_SIZE) throw new SysError(Errno.EFAULT);
    return addr - MEMORY_BASE;
  }

  /** Bytes from `addr`, at most `length`, inside the flat memory, as MemoryManager.accessibleLength counts them. */
  accessibleLength(addr: number, length: number): number {
    if (length <= 0 || addr < MEMORY_BASE || addr >= MEMORY_BASE + MEMORY_SIZE) return 0;
    return Math.min(length, MEMORY_BASE + MEMORY_SIZE - addr);
  }

  copyIn(addr: number, length: number): Buffer {
    const start = this.offset(addr, length);
    return Buffer.from(this.bytes.subarray(start, start + length));
  }

  copyInto(addr: number, dst: Uint8Array): void {
    const start = this.offset(addr, dst.length);
    dst.set(this.bytes.subarray(start, start + dst.length));
  }

  copyOut(addr: number, data: Uint8Array): void {
    this.bytes.set(data, this.offset(addr, data.length));
  }

  /** Reserves `length` bytes (8-aligned) and returns their address. */
  alloc(length: number): number {
    const addr = this.next;
    this.next += (length + 7) & ~7;
    return addr;
  }

  /** Stores a NUL-terminated latin1 string and returns its address. */
  string(text: string): number {
    const bytes = Buffer.from(text + '\0', 'latin1');
    const addr = this.alloc(bytes.length);
    this.copyOut(addr, bytes);
    return addr;
  }
}

export interface FakeTask {
  readonly task: Task;
  readonly memory: FakeMemory;
  readonly vfs: Vfs;
  readonly fdTable: FdTable;
  /** Runs a system call handler and returns the result the application would get (-errno on failure). */
  call(name: SyscallName, ...args: number[]): Promise<number>;
  /** Closes every descriptor and the VFS. */
  close(): void;
}

export function fakeTask(hostRoot: string, options: { exePath?: string; fdTable?: FdTable } = {}): FakeTask {
  const memory = new FakeMemory();
  const vfs = new Vfs({ hostRoot });
  const fdTable = options.fdTable ?? new FdTable();
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const task = {
    tid: 1,
    tgid: 1,
    kernel: { vfs },
    mm: memory,
    fdTable,
    fs: new FsContext(),
    exePath: options.exePath ?? '/bin/true',
    creds: { uid, gid, euid: uid, egid: gid, suid: uid, sgid: gid, fsuid: uid, fsgid: gid, groups: [] },
    // Waits as Task.block does, except that nothing here sends signals to interrupt them.
    block: <T>(start: (resolve: (value: T) => void, reject: (error: unknown) => void) => () => void) =>
      new Promise<T>((resolve, reject) => {
        start(resolve, reject);
      }),
  } as unknown as Task;
  // /proc looks processes up in the kernel's tables, so the task is its own single-threaded group.
  const threadGroup = { tgid: 1, pgid: 1, sid: 1, tasks: new Set([task]), anyTask: task, zombie: false };
  Object.assign(task, { threadGroup });
  Object.assign(task.kernel, { tasks: new Map([[1, task]]), threadGroups: new Map([[1, threadGroup]]) });

  async function call(name: SyscallName, ...args: number[]): Promise<number> {
    const handler = syscallTable[Sys[name]]?.handler;
    if (handler === undefined) throw new Error(`${name} is not registered`);
    const [a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0] = args;
    try {
      return await handler(task, a0, a1, a2, a3, a4, a5);
    } catch (error) {
      if (error instanceof SysError) return -error.errno;
      throw error;
    }
  }

  return {
    task,
    memory,
    vfs,
    fdTable,
    call,
    close() {
      fdTable.closeAll();
      vfs.close();
    },
  };
}
