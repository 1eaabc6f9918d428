/**
 * /proc, generated from the sentry's own state. It has /proc/self, the system files of
 * proc-system.ts, and a directory per sandbox process with the exe, cwd and root symlinks, the fd
 * directory, maps, stat, statm, status, limits, mounts, cmdline, comm, environ and the task
 * directory of its threads. Each /proc/PID/fd/N is a "magic" link: following it leads to the
 * open file description itself, as on Linux. exe, cwd and root are ordinary symlinks to canonical
 * sandbox paths here, so they lead to the same file only as long as it has not been renamed or
 * removed.
 */
import { Errno, fail } from '../errno.js';
import { formatMaps } from '../mm/proc-maps.js';
import type { Task } from '../kernel/task.js';
import { DT_DIR, DT_LNK, DT_REG } from './dirent.js';
import type { FileDescription, FileStat } from './file.js';
import type { Filesystem } from './filesystem.js';
import { O_ACCMODE, O_PATH, O_RDONLY, O_WRONLY, S_IFDIR, S_IFLNK, S_IFREG } from './flags.js';
import { PathFile } from './host-file.js';
import { formatLimits } from './proc-limits.js';
import { formatStat, formatStatm, formatStatus, readCmdline, readEnviron, ticksSince } from './proc-process.js';
import { formatMounts, SYSTEM_FILES, type SystemFile, systemFileContents } from './proc-system.js';
import { type FsStat, ST_NODEV, ST_NOEXEC, ST_NOSUID } from './statfs.js';
import { SyntheticDirectory, type SyntheticEntry } from './synthetic-dir.js';
import { SyntheticFile } from './synthetic-file.js';

/**
 * Device number of the proc mount: major 0 (anonymous), minor chosen here. Linux assigns
 * anonymous minors dynamically, so no program can rely on the value.
 */
const PROC_DEV = 0x16n;

/** f_type of proc from <linux/magic.h>. */
const PROC_SUPER_MAGIC = 0x9fa0n;

/**
 * Inode numbers: the root is 1 (as on Linux's proc), self 2, the system files follow, and a
 * process's or thread's nodes derive from its id.
 */
const ROOT_INO = 1n;
const SELF_INO = 2n;
const FIRST_SYSTEM_INO = 3n;
const PROCESS_LINKS = ['exe', 'cwd', 'root'] as const;
const PROCESS_FILES = ['maps', 'stat', 'status', 'cmdline', 'comm', 'environ', 'limits', 'mounts', 'statm'] as const;
const PROCESS_DIR_INDEX = 0xff;
const FD_DIR_INDEX = 0xfe;
const TASK_DIR_INDEX = 0xfd;
const FIRST_FILE_INDEX = 0x10;
/** Added to the index of a node under /proc/PID/task/TID, so it differs from /proc/TID's. */
const THREAD_INDEX_OFFSET = 0x100;

type ProcessLink = (typeof PROCESS_LINKS)[number];
type ProcessFile = (typeof PROCESS_FILES)[number];

function processIno(pid: number, index: number): bigint {
  return (BigInt(pid) << 16n) + BigInt(index + 1);
}

function fdIno(pid: number, fd: number): bigint {
  return (BigInt(pid) << 32n) + BigInt(fd) + 0x10000n;
}

function fileIndex(name: ProcessFile, thread: boolean): number {
  return FIRST_FILE_INDEX + PROCESS_FILES.indexOf(name) + (thread ? THREAD_INDEX_OFFSET : 0);
}

const ID_PATTERN = /^[1-9][0-9]{0,9}$/;

/**
 * A parsed path inside the proc mount. `target` is the task whose state the node shows: the
 * thread group leader (or another live thread once the leader has exited) for /proc/PID, the
 * thread itself for /proc/PID/task/TID.
 */
type ProcNode =
  | { kind: 'root' }
  | { kind: 'self' }
  | { kind: 'system'; name: SystemFile }
  | { kind: 'process'; pid: number; target: Task }
  | { kind: 'link'; pid: number; target: Task; name: ProcessLink }
  | { kind: 'fds'; pid: number; target: Task }
  | { kind: 'fd'; pid: number; target: Task; fd: number; file: FileDescription }
  | { kind: 'file'; pid: number; target: Task; name: ProcessFile; thread: boolean }
  | { kind: 'tasks'; pid: number; target: Task }
  | { kind: 'thread'; pid: number; target: Task };

export class ProcFilesystem implements Filesystem {
  readonly name = 'proc';
  private readonly mountTimeNs = BigInt(Date.now()) * 1_000_000n;

  private parse(path: string, task: Task | undefined): ProcNode {
    if (path === '') return { kind: 'root' };
    // Every other node shows some process's state, which only a sandbox task can reach.
    if (task === undefined) return fail(Errno.ENOENT);
    const parts = path.split('/');
    if (parts.length === 1) {
      if (parts[0] === 'self') return { kind: 'self' };
      const system = SYSTEM_FILES.find((name) => name === parts[0]);
      if (system !== undefined) return { kind: 'system', name: system };
    }

    if (!ID_PATTERN.test(parts[0])) return fail(Errno.ENOENT);
    const pid = Number(parts[0]);
    const group = task.kernel.threadGroups.get(pid);
    // A zombie shows the task that exited last, with no memory or descriptors, as Linux shows it.
    const target = group?.anyTask ?? (group?.zombie ? group.lastTask : undefined);
    if (target === undefined) return fail(Errno.ENOENT);
    if (parts.length === 1) return { kind: 'process', pid, target };
    const name = parts[1];
    if (parts.length === 2) {
      const link = PROCESS_LINKS.find((candidate) => candidate === name);
      if (link !== undefined) return { kind: 'link', pid, target, name: link };
      const file = PROCESS_FILES.find((candidate) => candidate === name);
      if (file !== undefined) return { kind: 'file', pid, target, name: file, thread: false };
    }
    if (name === 'fd') {
      if (parts.length === 2) return { kind: 'fds', pid, target };
      if (parts.length === 3 && /^(0|[1-9][0-9]{0,9})$/.test(parts[2])) {
        const fd = Number(parts[2]);
        const fdTable = target.fdTable;
        if (fd < fdTable.limit && fdTable.openFds().includes(fd)) {
          return { kind: 'fd', pid, target, fd, file: fdTable.get(fd) };
        }
      }
    }
    if (name === 'task') {
      if (parts.length === 2) return { kind: 'tasks', pid, target };
      const thread = ID_PATTERN.test(parts[2]) ? task.kernel.tasks.get(Number(parts[2])) : undefined;
      if (thread === undefined || thread.threadGroup !== group) return fail(Errno.ENOENT);
      if (parts.length === 3) return { kind: 'thread', pid: thread.tid, target: thread };
      const file = PROCESS_FILES.find((candidate) => candidate === parts[3]);
      if (parts.length === 4 && file !== undefined) return { kind: 'file', pid: thread.tid, target: thread, name: file, thread: true };
    }
    return fail(Errno.ENOENT);
  }

  private attributes(node: ProcNode, task: Task | undefined): FileStat {
    let ino: bigint;
    let mode: number;
    let nlink = 1;
    switch (node.kind) {
      case 'root':
        ino = ROOT_INO;
        mode = S_IFDIR | 0o555;
        nlink = 3;
        break;
      case 'self':
        ino = SELF_INO;
        mode = S_IFLNK | 0o777;
        break;
      case 'system':
        ino = FIRST_SYSTEM_INO + BigInt(SYSTEM_FILES.indexOf(node.name));
        mode = S_IFREG | 0o444;
        break;
      case 'process':
        ino = processIno(node.pid, PROCESS_DIR_INDEX);
        mode = S_IFDIR | 0o555;
        nlink = 3;
        break;
      case 'thread':
        ino = processIno(node.pid, PROCESS_DIR_INDEX + THREAD_INDEX_OFFSET);
        mode = S_IFDIR | 0o555;
        nlink = 2;
        break;
      case 'tasks':
        ino = processIno(node.pid, TASK_DIR_INDEX);
        mode = S_IFDIR | 0o555;
        nlink = 3;
        break;
      case 'link':
        ino = processIno(node.pid, PROCESS_LINKS.indexOf(node.name));
        mode = S_IFLNK | 0o777;
        break;
      case 'fds':
        ino = processIno(node.pid, FD_DIR_INDEX);
        mode = S_IFDIR | 0o500;
        nlink = 2;
        break;
      case 'file':
        ino = processIno(node.pid, fileIndex(node.name, node.thread));
        // environ may contain secrets, so Linux lets only the owner read it.
        mode = node.name === 'environ' ? S_IFREG | 0o400 : S_IFREG | 0o444;
        break;
      case 'fd': {
        // Linux shows the access mode in the link's permission bits: r-x for reading, -wx for writing.
        ino = fdIno(node.pid, node.fd);
        const access = node.file.flags & O_ACCMODE;
        mode = S_IFLNK | 0o700;
        if (access === O_RDONLY) mode = S_IFLNK | 0o500;
        else if (access === O_WRONLY) mode = S_IFLNK | 0o300;
        break;
      }
    }
    const owner = 'target' in node ? node.target : undefined;
    return {
      dev: PROC_DEV,
      ino,
      mode,
      nlink,
      uid: owner !== undefined ? owner.creds.euid : 0,
      gid: owner !== undefined ? owner.creds.egid : 0,
      rdev: 0n,
      size: 0,
      blksize: 1024,
      blocks: 0,
      atimeNs: this.mountTimeNs,
      mtimeNs: this.mountTimeNs,
      ctimeNs: this.mountTimeNs,
    };
  }

  statfs(): FsStat {
    return {
      type: PROC_SUPER_MAGIC,
      blockSize: 4096n,
      blocks: 0n,
      freeBlocks: 0n,
      availableBlocks: 0n,
      files: 0n,
      freeFiles: 0n,
      fsid: [0, 0],
      nameMax: 255n,
      fragmentSize: 4096n,
      flags: ST_NOSUID | ST_NODEV | ST_NOEXEC,
    };
  }

  lstat(path: string, task: Task | undefined): FileStat {
    return this.attributes(this.parse(path, task), task);
  }

  readlink(path: string, task: Task | undefined): string {
    const node = this.parse(path, task);
    if (task === undefined) return fail(Errno.ENOENT);
    switch (node.kind) {
      case 'self':
        return String(task.tgid);
      case 'link':
        if (node.target.threadGroup.zombie) return fail(Errno.ENOENT);
        if (node.name === 'exe') return node.target.exePath;
        if (node.name === 'cwd') return node.target.fs.cwd;
        return node.target.fs.root;
      case 'fd':
        return node.file.path;
      default:
        return fail(Errno.EINVAL);
    }
  }

  magicLink(path: string, task: Task | undefined): FileDescription | undefined {
    const node = this.parse(path, task);
    return node.kind === 'fd' ? node.file : undefined;
  }

  open(path: string, sandboxPath: string, flags: number, _stat: FileStat, task: Task | undefined): FileDescription {
    const node = this.parse(path, task);
    if (flags & O_PATH) return new PathFile(() => this.attributes(node, task), flags, sandboxPath);
    if (node.kind === 'self' || node.kind === 'link' || node.kind === 'fd') return fail(Errno.ELOOP);
    if (node.kind === 'file' || node.kind === 'system') {
      if (task === undefined) return fail(Errno.ENOENT);
      if ((flags & O_ACCMODE) !== O_RDONLY) fail(Errno.EACCES);
      const contents = node.kind === 'system' ? systemFileContents(node.name, task.kernel) : this.fileContents(node.name, node.target, task);
      return new SyntheticFile(() => this.attributes(node, task), contents, flags, sandboxPath);
    }
    if ((flags & O_ACCMODE) !== O_RDONLY) fail(Errno.EISDIR);

    return new SyntheticDirectory(() => this.attributes(node, task), () => this.list(node, task), flags, sandboxPath);
  }

  private fileContents(name: ProcessFile, target: Task, reader: Task): Buffer {
    // A zombie's memory is gone: what Linux reads from it is empty.
    const zombie = target.threadGroup.zombie;
    if (zombie && (name === 'maps' || name === 'cmdline' || name === 'environ' || name === 'mounts')) return Buffer.alloc(0);
    if (zombie && name === 'statm') return Buffer.from('0 0 0 0 0 0 0\n');
    switch (name) {
      case 'maps':
        return Buffer.from(formatMaps(target.mm, target.mm.layout.stackTop), 'latin1');
      case 'stat':
        return Buffer.from(formatStat(target, reader, (timeNs) => ticksSince(target.kernel.bootTime, timeNs)));
      case 'status':
        return Buffer.from(formatStatus(target, reader));
      case 'cmdline':
        return readCmdline(target.mm);
      case 'comm':
        return Buffer.from(`${target.name}\n`);
      case 'environ':
        if (reader.creds.euid !== 0 && reader.creds.euid !== target.creds.euid) fail(Errno.EACCES);
        return readEnviron(target.mm);
      case 'limits':
        return Buffer.from(formatLimits(target.threadGroup.limits));
      case 'mounts':
        // Every process of the sandbox shares one mount namespace.
        return Buffer.from(formatMounts(target.kernel));
      case 'statm':
        return Buffer.from(formatStatm(target.mm));
    }
  }

  private list(node: ProcNode, task: Task | undefined): SyntheticEntry[] {
    let parentIno = ROOT_INO;
    if (node.kind === 'fds' || node.kind === 'tasks') parentIno = processIno(node.pid, PROCESS_DIR_INDEX);
    else if (node.kind === 'thread') parentIno = processIno(node.target.tgid, TASK_DIR_INDEX);
    const entries: SyntheticEntry[] = [
      { name: '.', ino: this.attributes(node, task).ino, type: DT_DIR },
      { name: '..', ino: parentIno, type: DT_DIR },
    ];
    switch (node.kind) {
      case 'root':
        entries.push({ name: 'self', ino: SELF_INO, type: DT_LNK });
        SYSTEM_FILES.forEach((name, index) => entries.push({ name, ino: FIRST_SYSTEM_INO + BigInt(index), type: DT_REG }));
        if (task === undefined) break;
        for (const [pid, group] of [...task.kernel.threadGroups].sort((a, b) => a[0] - b[0])) {
          if (group.anyTask !== undefined || group.zombie) entries.push({ name: String(pid), ino: processIno(pid, PROCESS_DIR_INDEX), type: DT_DIR });
        }
        break;
      case 'process':
        PROCESS_LINKS.forEach((name, index) => entries.push({ name, ino: processIno(node.pid, index), type: DT_LNK }));
        entries.push({ name: 'fd', ino: processIno(node.pid, FD_DIR_INDEX), type: DT_DIR });
        entries.push({ name: 'task', ino: processIno(node.pid, TASK_DIR_INDEX), type: DT_DIR });
        for (const name of PROCESS_FILES) entries.push({ name, ino: processIno(node.pid, fileIndex(name, false)), type: DT_REG });
        break;
      case 'thread':
        for (const name of PROCESS_FILES) entries.push({ name, ino: processIno(node.pid, fileIndex(name, true)), type: DT_REG });
        break;
      case 'tasks': {
        const tids = [...node.target.threadGroup.tasks].map((thread) => thread.tid).sort((a, b) => a - b);
        for (const tid of tids) entries.push({ name: String(tid), ino: processIno(tid, PROCESS_DIR_INDEX + THREAD_INDEX_OFFSET), type: DT_DIR });
        break;
      }
      case 'fds':
        if (node.target.threadGroup.zombie) break;
        for (const fd of node.target.fdTable.openFds()) entries.push({ name: String(fd), ino: fdIno(node.pid, fd), type: DT_LNK });
        break;
      default:
        break;
    }
    return entries;
  }

  close(): void {}
}
