/**
 * An unconnected Unix domain socket. The sandbox has no listening sockets yet, so this is all
 * socket() returns: connect fails as it would against a path without a listener, and I/O fails
 * with ENOTCONN. That is enough for glibc's probe of the nscd socket, which expects ENOENT.
 */
import { Errno, fail } from '../errno.js';
import type { FileStat } from './file.js';
import { FileBase } from './file-base.js';
import { O_RDWR, S_IFSOCK } from './flags.js';

/** Device of the socket file system: anonymous major 0, minor chosen here (Linux assigns one dynamically). */
const SOCKFS_DEV = 0x8n;

let nextIno = 1n;

export class UnixSocket extends FileBase {
  private readonly ino = nextIno++;
  private readonly createdNs = BigInt(Date.now()) * 1_000_000n;

  constructor(
    /** SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET. */
    readonly type: number,
    flags: number,
    private readonly uid: number,
    private readonly gid: number,
  ) {
    super(O_RDWR | flags, `socket:[${nextIno - 1n}]`);
  }

  stat(): FileStat {
    return {
      dev: SOCKFS_DEV,
      ino: this.ino,
      mode: S_IFSOCK | 0o777,
      nlink: 1,
      uid: this.uid,
      gid: this.gid,
      rdev: 0n,
      size: 0,
      blksize: 4096,
      blocks: 0,
      atimeNs: this.createdNs,
      mtimeNs: this.createdNs,
      ctimeNs: this.createdNs,
    };
  }

  override read(): number {
    return fail(Errno.ENOTCONN);
  }

  override write(): number {
    return fail(Errno.ENOTCONN);
  }
}
