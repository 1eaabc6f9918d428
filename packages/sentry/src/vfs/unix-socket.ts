/**
 * Unix domain sockets. UnixSocket is what socket() returns: unconnected, and the sandbox has no
 * listening sockets yet, so connect fails as it would against a path without a listener and I/O
 * fails with ENOTCONN. That is enough for glibc's probe of the nscd socket, which expects ENOENT.
 * Connected sockets come from socketpair() (see socket-pair.ts) and share the options kept here.
 */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import type { FileStat } from './file.js';
import { FileBase } from './file-base.js';
import { O_RDWR, S_IFSOCK } from './flags.js';

/** Device of the socket file system: anonymous major 0, minor chosen here (Linux assigns one dynamically). */
const SOCKFS_DEV = 0x8n;

/** Default SO_SNDBUF and SO_RCVBUF: Linux's net.core.wmem_default and rmem_default. */
export const DEFAULT_SOCKET_BUFFER = 212992;

/** Largest value setsockopt accepts before doubling: Linux's default net.core.wmem_max and rmem_max. */
const MAX_SOCKET_BUFFER_REQUEST = 212992;

/** Smallest buffers Linux allows (SOCK_MIN_SNDBUF and SOCK_MIN_RCVBUF with x86-64's struct sk_buff). */
const MIN_SEND_BUFFER = 4608;
const MIN_RECEIVE_BUFFER = 2304;

let nextIno = 1n;

export class UnixSocket extends FileBase {
  private readonly ino = nextIno++;
  private readonly createdNs = BigInt(Date.now()) * 1_000_000n;
  /** SO_SNDBUF in bytes, as getsockopt reports it. */
  sendBuffer = DEFAULT_SOCKET_BUFFER;
  /** SO_RCVBUF in bytes, as getsockopt reports it. */
  receiveBuffer = DEFAULT_SOCKET_BUFFER;
  /** The pending socket error (SO_ERROR) as an errno, 0 when none. */
  pendingError = 0;

  constructor(
    /** SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET. */
    readonly type: number,
    flags: number,
    private readonly uid: number,
    private readonly gid: number,
  ) {
    super(O_RDWR | flags, `socket:[${nextIno - 1n}]`);
  }

  /** Whether the socket has a peer; an unconnected socket fails send and recv with ENOTCONN. */
  get connected(): boolean {
    return false;
  }

  /** Sets SO_SNDBUF as Linux does: the request is capped, doubled for bookkeeping overhead and raised to a floor. */
  setSendBuffer(request: number): void {
    this.sendBuffer = Math.max(Math.min(request >>> 0, MAX_SOCKET_BUFFER_REQUEST) * 2, MIN_SEND_BUFFER);
  }

  setReceiveBuffer(request: number): void {
    this.receiveBuffer = Math.max(Math.min(request >>> 0, MAX_SOCKET_BUFFER_REQUEST) * 2, MIN_RECEIVE_BUFFER);
  }

  /** Returns and clears the pending error, as reading SO_ERROR or a failed receive does. */
  takeError(): number {
    const error = this.pendingError;
    this.pendingError = 0;
    return error;
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

  override read(_task: Task, _dst: Uint8Array): number | Promise<number> {
    return fail(Errno.ENOTCONN);
  }

  override write(_task: Task, _src: Uint8Array): number | Promise<number> {
    return fail(Errno.ENOTCONN);
  }
}
