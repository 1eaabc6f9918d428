/**
 * A minimal /proc: the directory itself, /proc/self (a symlink to the caller's process), and per
 * process /proc/PID with the exe, cwd and root symlinks. Linux makes exe, cwd and root "magic"
 * links that lead to the object itself. Here they are ordinary symlinks to canonical sandbox paths,
 * so they lead to the same file only as long as it has not been renamed or removed.
 */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { DT_DIR, DT_LNK } from './dirent.js';
import type { FileDescription, FileStat } from './file.js';
import type { Filesystem } from './filesystem.js';
import { O_ACCMODE, O_PATH, O_RDONLY, S_IFDIR, S_IFLNK } from './flags.js';
import { PathFile } from './host-file.js';
import { SyntheticDirectory, type SyntheticEntry } from './synthetic-dir.js';

/**
 * Device number of the proc mount: major 0 (anonymous), minor chosen here. Linux assigns
 * anonymous minors dynamically, so no program can rely on the value.
 */
const PROC_DEV = 0x16n;

/** Inode numbers: the root is 1 (as on Linux's proc), self 2, a process's nodes are derived from its pid. */
const ROOT_INO = 1n;
const SELF_INO = 2n;
const PROCESS_FILES = ['exe', 'cwd', 'root'] as const;

function processIno(pid: number, index: number): bigint {
  return (BigInt(pid) << 8n) + BigInt(index + 1);
}

/** A parsed path inside the proc mount. */
type ProcNode =
  | { kind: 'root' }
  | { kind: 'self' }
  | { kind: 'process'; pid: number }
  | { kind: 'link'; pid: number; file: (typeof PROCESS_FILES)[number] };

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
    if (parts.length === 1) return { kind: 'process', pid: task.tgid };
    const file = PROCESS_FILES.find((name) => name === parts[1]);
    if (parts.length === 2 && file !== undefined) return { kind: 'link', pid: task.tgid, file };
    return fail(Errno.ENOENT);
  }

  private attributes(node: ProcNode, task: Task | undefined): FileStat {
    let ino: bigint;
    let mode: number;
    let nlink = 1;
    if (node.kind === 'root') {
      ino = ROOT_INO;
      mode = S_IFDIR | 0o555;
      nlink = 3;
    } else if (node.kind === 'self') {
      ino = SELF_INO;
      mode = S_IFLNK | 0o777;
    } else if (node.kind === 'process') {
      ino = processIno(node.pid, 0xff);
      mode = S_IFDIR | 0o555;
      nlink = 2;
    } else {
      ino = processIno(node.pid, PROCESS_FILES.indexOf(node.file));
      mode = S_IFLNK | 0o777;
    }
    const owner = node.kind === 'root' || node.kind === 'self' || task === undefined ? 0 : task.creds.euid;
    const group = node.kind === 'root' || node.kind === 'self' || task === undefined ? 0 : task.creds.egid;
    return {
      dev: PROC_DEV,
      ino,
      mode,
      nlink,
      uid: owner,
      gid: group,
      rdev: 0n,
      size: 0,
      blksize: 1024,
      blocks: 0,
      atimeNs: this.mountTimeNs,
      mtimeNs: this.mountTimeNs,
      ctimeNs: this.mountTimeNs,
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
        if (node.file === 'exe') return task.exePath;
        if (node.file === 'cwd') return task.fs.cwd;
        return task.fs.root;
      default:
        return fail(Errno.EINVAL);
    }
  }

  open(path: string, sandboxPath: string, flags: number, _stat: FileStat, task: Task | undefined): FileDescription {
    const node = this.parse(path, task);
    if (flags & O_PATH) return new PathFile(() => this.attributes(node, task), flags, sandboxPath);
    if (node.kind === 'self' || node.kind === 'link') return fail(Errno.ELOOP);
    if ((flags & O_ACCMODE) !== O_RDONLY) fail(Errno.EISDIR);

    const self: SyntheticEntry[] = [
      { name: '.', ino: this.attributes(node, task).ino, type: DT_DIR },
    ];
    let entries: SyntheticEntry[];
    if (node.kind === 'root') {
      entries = [...self, { name: '..', ino: ROOT_INO, type: DT_DIR }, { name: 'self', ino: SELF_INO, type: DT_LNK }];
      if (task !== undefined) entries.push({ name: String(task.tgid), ino: processIno(task.tgid, 0xff), type: DT_DIR });
    } else {
      entries = [...self, { name: '..', ino: ROOT_INO, type: DT_DIR }];
      PROCESS_FILES.forEach((name, index) => entries.push({ name, ino: processIno(node.pid, index), type: DT_LNK }));
    }
    return new SyntheticDirectory(() => this.attributes(node, task), entries, flags, sandboxPath);
  }

  close(): void {}
}
