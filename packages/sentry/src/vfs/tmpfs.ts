/**
 * tmpfs: a writable file system held in the sentry's memory, mounted by default at /tmp and
 * /dev/shm so that programs can create files without touching the host.
 *
 * NOTE: file data lives in JavaScript Buffers for now. Pages in the memory file, which MAP_SHARED
 * mappings of tmpfs files need to see each other's writes, come later. Until then mmap of a tmpfs
 * file gives a private copy, as every file mapping does so far.
 */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { DT_DIR, DT_LNK, DT_REG } from './dirent.js';
import type { FileDescription, FileStat } from './file.js';
import type { AttributeChange, Filesystem } from './filesystem.js';
import { O_ACCMODE, O_PATH, O_RDONLY, O_TRUNC, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from './flags.js';
import { PathFile } from './host-file.js';
import type { FsStat } from './statfs.js';
import { TmpfsDirectory, TmpfsRegularFile } from './tmpfs-file.js';

/** f_type Linux reports for tmpfs (TMPFS_MAGIC in <linux/magic.h>). */
const TMPFS_MAGIC = 0x01021994n;

/** Block size stat reports, and the unit of st_blocks (512 bytes). */
const BLOCK_SIZE = 4096;

/** Largest file size accepted, well below what a Buffer can hold. */
export const MAX_TMPFS_FILE = 1 << 30;

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
}

export class Inode {
  nlink: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** Regular files: the bytes, of which the first `size` count. */
  data = Buffer.alloc(0);
  size = 0;
  /** Directories: the entries, in creation order, which getdents keeps. */
  readonly children: Map<string, Inode> | undefined;
  /** Symlinks: the target. */
  target = '';

  constructor(
    readonly fs: Tmpfs,
    readonly ino: bigint,
    public mode: number,
    public uid: number,
    public gid: number,
  ) {
    this.nlink = (mode & S_IFMT) === S_IFDIR ? 2 : 1;
    this.atimeNs = this.mtimeNs = this.ctimeNs = nowNs();
    this.children = (mode & S_IFMT) === S_IFDIR ? new Map() : undefined;
  }

  stat(): FileStat {
    const type = this.mode & S_IFMT;
    // A directory's size is an estimate in the spirit of Linux tmpfs, which counts its entries.
    let size = this.children === undefined ? this.size : this.children.size * 20 + 40;
    if (type === S_IFLNK) size = this.target.length;
    return {
      dev: this.fs.dev,
      ino: this.ino,
      mode: this.mode,
      nlink: this.nlink,
      uid: this.uid,
      gid: this.gid,
      rdev: 0n,
      size,
      blksize: BLOCK_SIZE,
      blocks: type === S_IFREG ? Math.ceil(this.size / BLOCK_SIZE) * (BLOCK_SIZE / 512) : 0,
      atimeNs: this.atimeNs,
      mtimeNs: this.mtimeNs,
      ctimeNs: this.ctimeNs,
    };
  }

  /** Sets the size of a regular file, zero-filling what it grows by (EFBIG past MAX_TMPFS_FILE). */
  truncate(length: number): void {
    if (length > MAX_TMPFS_FILE) fail(Errno.EFBIG);
    if (length > this.data.length) {
      const grown = Buffer.alloc(Math.min(MAX_TMPFS_FILE, Math.max(length, this.data.length * 2)));
      this.data.copy(grown, 0, 0, this.size);
      this.data = grown;
    } else if (length < this.size) {
      this.data.fill(0, length, this.size);
    }
    this.size = length;
    this.mtimeNs = this.ctimeNs = nowNs();
  }

  setAttributes(change: AttributeChange): void {
    if (change.mode !== undefined) this.mode = (this.mode & S_IFMT) | (change.mode & 0o7777);
    if (change.uid !== undefined && change.uid !== -1) this.uid = change.uid;
    if (change.gid !== undefined && change.gid !== -1) this.gid = change.gid;
    if (change.atimeNs !== undefined) this.atimeNs = change.atimeNs;
    if (change.mtimeNs !== undefined) this.mtimeNs = change.mtimeNs;
    if (change.size !== undefined) {
      if ((this.mode & S_IFMT) === S_IFDIR) fail(Errno.EISDIR);
      if ((this.mode & S_IFMT) !== S_IFREG) fail(Errno.EINVAL);
      this.truncate(change.size);
    }
    this.ctimeNs = nowNs();
  }

  direntType(): number {
    const type = this.mode & S_IFMT;
    if (type === S_IFDIR) return DT_DIR;
    if (type === S_IFLNK) return DT_LNK;
    return DT_REG;
  }
}

function splitPath(path: string): string[] {
  return path === '' ? [] : path.split('/');
}

export class Tmpfs implements Filesystem {
  readonly name = 'tmpfs';
  readonly root: Inode;
  private nextIno = 2n;

  /** `dev` is the st_dev of every file, distinct for each mount. */
  constructor(readonly dev: bigint) {
    this.root = new Inode(this, 1n, S_IFDIR | 0o1777, 0, 0);
  }

  private inode(path: string): Inode {
    let node = this.root;
    for (const name of splitPath(path)) {
      if (node.children === undefined) return fail(Errno.ENOTDIR);
      const child = node.children.get(name);
      if (child === undefined) return fail(Errno.ENOENT);
      node = child;
    }
    return node;
  }

  /** Returns the directory holding `path` and the entry's name. */
  private parentOf(path: string): { dir: Inode; name: string } {
    const slash = path.lastIndexOf('/');
    const dir = this.inode(slash < 0 ? '' : path.slice(0, slash));
    if (dir.children === undefined) fail(Errno.ENOTDIR);
    return { dir, name: path.slice(slash + 1) };
  }

  private add(path: string, mode: number, task: Task | undefined): Inode {
    if (path === '') fail(Errno.EEXIST);
    const { dir, name } = this.parentOf(path);
    if (dir.children!.has(name)) fail(Errno.EEXIST);
    // The group of a new file is the directory's when it is set-group-ID, as in Linux.
    const gid = dir.mode & 0o2000 ? dir.gid : (task?.creds.fsgid ?? 0);
    const node = new Inode(this, this.nextIno++, mode, task?.creds.fsuid ?? 0, gid);
    dir.children!.set(name, node);
    if ((mode & S_IFMT) === S_IFDIR) dir.nlink++;
    dir.mtimeNs = dir.ctimeNs = node.ctimeNs;
    return node;
  }

  lstat(path: string): FileStat {
    return this.inode(path).stat();
  }

  readlink(path: string): string {
    const node = this.inode(path);
    if ((node.mode & S_IFMT) !== S_IFLNK) fail(Errno.EINVAL);
    return node.target;
  }

  open(path: string, sandboxPath: string, flags: number, _stat: FileStat, _task: Task | undefined): FileDescription {
    const node = this.inode(path);
    if (flags & O_PATH) return new PathFile(() => node.stat(), flags, sandboxPath);
    switch (node.mode & S_IFMT) {
      case S_IFREG:
        if (flags & O_TRUNC && (flags & O_ACCMODE) !== O_RDONLY) node.truncate(0);
        return new TmpfsRegularFile(node, flags, sandboxPath);
      case S_IFDIR:
        if ((flags & O_ACCMODE) !== O_RDONLY) fail(Errno.EISDIR);
        return new TmpfsDirectory(node, flags, sandboxPath);
      default:
        return fail(Errno.ELOOP);
    }
  }

  // NOTE: the mount has no size limit yet. Its data counts against the Node process's memory, and
  // the capacity reported here is a nominal 1 GiB.
  statfs(): FsStat {
    return {
      type: TMPFS_MAGIC,
      blockSize: BigInt(BLOCK_SIZE),
      blocks: BigInt(MAX_TMPFS_FILE / BLOCK_SIZE),
      freeBlocks: BigInt(MAX_TMPFS_FILE / BLOCK_SIZE),
      availableBlocks: BigInt(MAX_TMPFS_FILE / BLOCK_SIZE),
      files: 1n << 20n,
      freeFiles: (1n << 20n) - this.nextIno,
      fsid: [0, 0],
      nameMax: 255n,
      fragmentSize: BigInt(BLOCK_SIZE),
      flags: 0n,
    };
  }

  create(path: string, mode: number, task: Task | undefined): void {
    this.add(path, S_IFREG | (mode & 0o7777), task);
  }

  mkdir(path: string, mode: number, task: Task | undefined): void {
    this.add(path, S_IFDIR | (mode & 0o7777), task);
  }

  symlink(path: string, target: string, task: Task | undefined): void {
    this.add(path, S_IFLNK | 0o777, task).target = target;
  }

  link(oldPath: string, newPath: string): void {
    const node = this.inode(oldPath);
    if ((node.mode & S_IFMT) === S_IFDIR) fail(Errno.EPERM);
    const { dir, name } = this.parentOf(newPath);
    if (dir.children!.has(name)) fail(Errno.EEXIST);
    dir.children!.set(name, node);
    node.nlink++;
    node.ctimeNs = dir.mtimeNs = dir.ctimeNs = nowNs();
  }

  unlink(path: string): void {
    const { dir, name } = this.parentOf(path);
    const node = dir.children!.get(name);
    if (node === undefined) fail(Errno.ENOENT);
    if (node.children !== undefined) fail(Errno.EISDIR);
    dir.children!.delete(name);
    node.nlink--;
    node.ctimeNs = dir.mtimeNs = dir.ctimeNs = nowNs();
  }

  rmdir(path: string): void {
    if (path === '') fail(Errno.EBUSY);
    const { dir, name } = this.parentOf(path);
    const node = dir.children!.get(name);
    if (node === undefined) fail(Errno.ENOENT);
    if (node.children === undefined) fail(Errno.ENOTDIR);
    if (node.children.size > 0) fail(Errno.ENOTEMPTY);
    dir.children!.delete(name);
    dir.nlink--;
    node.nlink = 0;
    dir.mtimeNs = dir.ctimeNs = nowNs();
  }

  /** rename(2) within this file system; `noReplace` is RENAME_NOREPLACE. */
  rename(oldPath: string, newPath: string, noReplace: boolean): void {
    if (oldPath === '' || newPath === '') fail(Errno.EBUSY);
    const from = this.parentOf(oldPath);
    const node = from.dir.children!.get(from.name);
    if (node === undefined) fail(Errno.ENOENT);
    if (oldPath === newPath) return;

    // A directory cannot move below itself.
    if (newPath.startsWith(oldPath + '/')) fail(Errno.EINVAL);
    const to = this.parentOf(newPath);
    const existing = to.dir.children!.get(to.name);
    if (existing !== undefined) {
      if (noReplace) fail(Errno.EEXIST);
      if (existing === node) return;
      if (node.children !== undefined) {
        if (existing.children === undefined) fail(Errno.ENOTDIR);
        if (existing.children.size > 0) fail(Errno.ENOTEMPTY);
        to.dir.nlink--;
        existing.nlink = 0;
      } else {
        if (existing.children !== undefined) fail(Errno.EISDIR);
        existing.nlink--;
      }
    }

    from.dir.children!.delete(from.name);
    to.dir.children!.set(to.name, node);
    if (node.children !== undefined) {
      from.dir.nlink--;
      to.dir.nlink++;
    }
    const now = nowNs();
    node.ctimeNs = from.dir.mtimeNs = from.dir.ctimeNs = to.dir.mtimeNs = to.dir.ctimeNs = now;
  }

  setAttributes(path: string, change: AttributeChange): void {
    this.inode(path).setAttributes(change);
  }

  close(): void {
    this.root.children!.clear();
  }
}
