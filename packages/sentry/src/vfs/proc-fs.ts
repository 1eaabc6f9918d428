/**
 * A minimal /proc: the directory itself, /proc/self (a symlink to the caller's process), and per
 * process /proc/PID with the exe, cwd and root symlinks, the maps file and the fd directory. Each /proc/PID/fd/N
 * is a "magic" link: following it leads to the open file description itself, as on Linux. exe,
 * cwd and root are ordinary symlinks to canonical sandbox paths here, so they lead to the same
 * file only as long as it has not been renamed or removed.
 */
import { Errno, fail } from '../errno.js';
import { formatMaps } from '../mm/proc-maps.js';
import type { Task } from '../kernel/task.js';
import { DT_DIR, DT_LNK, DT_REG } from './dirent.js';
import type { FileDescription, FileStat } from './file.js';
import type { Filesystem } from './filesystem.js';
import { O_ACCMODE, O_PATH, O_RDONLY, O_WRONLY, S_IFDIR, S_IFLNK, S_IFREG } from './flags.js';
import { PathFile } from './host-file.js';
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

/** Inode numbers: the root is 1 (as on Linux's proc), self 2, a process's nodes derive from its pid. */
const ROOT_INO = 1n;
const SELF_INO = 2n;
const PROCESS_LINKS = ['exe', 'cwd', 'root'] as const;
const PROCESS_DIR_INDEX = 0xff;
const FD_DIR_INDEX = 0xfe;
const MAPS_INDEX = 0xfd;

function processIno(pid: number, index: number): bigint {
  return (BigInt(pid) << 16n) + BigInt(index + 1);
}

function fdIno(pid: number, fd: number): bigint {
  return (BigInt(pid) << 32n) + BigInt(fd) + 0x10000n;
}

/** A parsed path inside the proc mount. */
type ProcNode =
  | { kind: 'root' }
  | { kind: 'self' }
  | { kind: 'process'; pid: number }
  | { kind: 'link'; pid: number; name: (typeof PROCESS_LINKS)[number] }
  | { kind: 'fds'; pid: number }
  | { kind: 'maps'; pid: number }
  | { kind: 'fd'; pid: number; fd: number; file: FileDescription };

export class ProcFilesystem implements Filesystem {
  readonly name = 'proc';
  private readonly mountTimeNs = BigInt(Date.now()) * 1_000_000n;

  private parse(path: string, task: Task | undefined): ProcNode {
    if (path === '') return { kind: 'root' };
    const parts = path.split('/');
    if (parts[0] === 'self' && parts.length === 1) {
      if (task === undefined) fail(Errno.ENOENT);
      return { kind: 'self' };
    }

    // Only the calling process is visible until the sentry has more than one.
    if (task === undefined || parts[0] !== String(task.tgid)) return fail(Errno.ENOENT);
    const pid = task.tgid;
    if (parts.length === 1) return { kind: 'process', pid };
    const name = PROCESS_LINKS.find((link) => link === parts[1]);
    if (parts.length === 2 && name !== undefined) return { kind: 'link', pid, name };
    if (parts.length === 2 && parts[1] === 'maps') return { kind: 'maps', pid };
    if (parts[1] === 'fd') {
      if (parts.length === 2) return { kind: 'fds', pid };
      if (parts.length === 3 && /^(0|[1-9][0-9]{0,9})$/.test(parts[2])) {
        const fd = Number(parts[2]);
        if (fd < task.fdTable.limit && task.fdTable.openFds().includes(fd)) {
          return { kind: 'fd', pid, fd, file: task.fdTable.get(fd) };
        }
      }
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
      case 'process':
        ino = processIno(node.pid, PROCESS_DIR_INDEX);
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
      case 'maps':
        ino = processIno(node.pid, MAPS_INDEX);
        mode = S_IFREG | 0o444;
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
    const owned = node.kind !== 'root' && node.kind !== 'self' && task !== undefined;
    return {
      dev: PROC_DEV,
      ino,
      mode,
      nlink,
      uid: owned ? task.creds.euid : 0,
      gid: owned ? task.creds.egid : 0,
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
        if (node.name === 'exe') return task.exePath;
        if (node.name === 'cwd') return task.fs.cwd;
        return task.fs.root;
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
    if (node.kind === 'maps') {
      if (task === undefined) return fail(Errno.ENOENT);
      if ((flags & O_ACCMODE) !== O_RDONLY) fail(Errno.EACCES);
      const contents = Buffer.from(formatMaps(task.mm, task.kernel.stackTop), 'latin1');
      return new SyntheticFile(() => this.attributes(node, task), contents, flags, sandboxPath);
    }
    if ((flags & O_ACCMODE) !== O_RDONLY) fail(Errno.EISDIR);

    return new SyntheticDirectory(() => this.attributes(node, task), () => this.list(node, task), flags, sandboxPath);
  }

  private list(node: ProcNode, task: Task | undefined): SyntheticEntry[] {
    const entries: SyntheticEntry[] = [
      { name: '.', ino: this.attributes(node, task).ino, type: DT_DIR },
      { name: '..', ino: node.kind === 'fds' ? processIno(node.pid, PROCESS_DIR_INDEX) : ROOT_INO, type: DT_DIR },
    ];
    if (node.kind === 'root') {
      entries.push({ name: 'self', ino: SELF_INO, type: DT_LNK });
      if (task !== undefined) entries.push({ name: String(task.tgid), ino: processIno(task.tgid, PROCESS_DIR_INDEX), type: DT_DIR });
    } else if (node.kind === 'process') {
      PROCESS_LINKS.forEach((name, index) => entries.push({ name, ino: processIno(node.pid, index), type: DT_LNK }));
      entries.push({ name: 'fd', ino: processIno(node.pid, FD_DIR_INDEX), type: DT_DIR });
      entries.push({ name: 'maps', ino: processIno(node.pid, MAPS_INDEX), type: DT_REG });
    } else if (node.kind === 'fds' && task !== undefined) {
      for (const fd of task.fdTable.openFds()) entries.push({ name: String(fd), ino: fdIno(node.pid, fd), type: DT_LNK });
    }
    return entries;
  }

  close(): void {}
}
