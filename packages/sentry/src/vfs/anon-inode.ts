/**
 * Inodes of the anonymous inode file system, which Linux gives to files that have no path of their
 * own, such as eventfd and epoll instances. Every such file of the sentry takes its inode number
 * from one counter, so no two of them share a device and inode pair.
 */
import type { FileStat } from './file.js';

/** Device of the anonymous inode file system: major 0, minor chosen here (Linux assigns one dynamically). */
export const ANON_INODE_DEV = 0xen;

let nextIno = 1n;

export class AnonymousInode {
  readonly ino = nextIno++;
  private readonly createdNs = BigInt(Date.now()) * 1_000_000n;

  /** Returns the inode's attributes: owned by the sentry's user, mode 0600, created with the file. */
  stat(): FileStat {
    return {
      dev: ANON_INODE_DEV,
      ino: this.ino,
      mode: 0o600,
      nlink: 1,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      rdev: 0n,
      size: 0,
      blksize: 4096,
      blocks: 0,
      atimeNs: this.createdNs,
      mtimeNs: this.createdNs,
      ctimeNs: this.createdNs,
    };
  }
}
