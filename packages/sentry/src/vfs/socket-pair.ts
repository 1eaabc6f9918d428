/**
 * Connected Unix domain sockets made by socketpair(). Each end queues what its peer sends: bytes
 * for SOCK_STREAM, whole messages for SOCK_DGRAM and SOCK_SEQPACKET. A sender may have up to its
 * SO_SNDBUF bytes unread in the peer's queue before it waits; Linux charges the size of each
 * kernel buffer as well, so it waits a little earlier. Waiting goes through Task.block as in
 * pipe.ts, so a signal ends the wait and other tasks keep running.
 */
import { Errno, fail, SysError } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { EPOLLRDHUP } from './epoll.js';
import { O_NONBLOCK } from './flags.js';
import { type CancelWatch, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRBAND, POLLWRNORM } from './poll-events.js';
import { UnixSocket } from './unix-socket.js';

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;

export const MSG_PEEK = 0x2;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;

/** Linux refuses a datagram larger than the send buffer minus this much (unix_dgram_sendmsg). */
const DATAGRAM_HEADROOM = 32;

/** FIONREAD (SIOCINQ): bytes ready to read, or the size of the next message. */
const FIONREAD = 0x541b;

/** One queued chunk or message: bytes [start, data.length) are unread. */
interface Chunk {
  readonly data: Buffer;
  start: number;
}

/** Result of a receive: the bytes copied and, for messages, the length of the whole message. */
export interface Received {
  readonly count: number;
  readonly messageLength: number;
}

export class SocketPairEnd extends UnixSocket {
  /** The other end; undefined once a datagram send found it closed. */
  private peer: SocketPairEnd | undefined;
  private closed = false;
  private readonly queue: Chunk[] = [];
  /** Unread bytes in `queue`. */
  private queued = 0;
  /** Whether receiving has been shut down (SHUT_RD here, or SHUT_WR or close at a connected peer). */
  private receiveShutdown = false;
  /** Whether sending has been shut down (SHUT_WR here, or SHUT_RD or close at a connected peer). */
  private sendShutdown = false;
  private readonly readWaiters = new Set<() => void>();
  private readonly writeWaiters = new Set<() => void>();

  /** Creates two connected sockets of `type`; `flags` may contain O_NONBLOCK. */
  static create(type: number, flags: number, uid: number, gid: number): [SocketPairEnd, SocketPairEnd] {
    const first = new SocketPairEnd(type, flags & O_NONBLOCK, uid, gid);
    const second = new SocketPairEnd(type, flags & O_NONBLOCK, uid, gid);
    first.peer = second;
    second.peer = first;
    return [first, second];
  }

  override get connected(): boolean {
    return this.peer !== undefined;
  }

  private get connectionBased(): boolean {
    return this.type !== SOCK_DGRAM;
  }

  override read(task: Task, dst: Uint8Array): number | Promise<number> {
    const result = this.receive(task, dst, 0);
    return result instanceof Promise ? result.then((received) => received.count) : result.count;
  }

  override write(task: Task, src: Uint8Array): number | Promise<number> {
    return this.send(task, src, 0);
  }

  /** Receives into `dst` with MSG_PEEK, MSG_TRUNC and MSG_DONTWAIT honoured. */
  receive(task: Task, dst: Uint8Array, flags: number): Received | Promise<Received> {
    if (this.queue.length > 0) return this.type === SOCK_STREAM ? this.takeBytes(dst, flags) : this.takeMessage(dst, flags);

    const error = this.takeError();
    if (error !== 0) fail(error);
    const nonBlocking = (flags & MSG_DONTWAIT) !== 0 || (this.flags & O_NONBLOCK) !== 0;
    // Linux reports end of file to a shut-down datagram socket only in a blocking receive.
    if (this.receiveShutdown && !(nonBlocking && this.type === SOCK_DGRAM)) return { count: 0, messageLength: 0 };
    if (nonBlocking) fail(Errno.EAGAIN);
    return this.waitOn(task, this.readWaiters).then(() => this.receive(task, dst, flags));
  }

  private takeBytes(dst: Uint8Array, flags: number): Received {
    const peek = (flags & MSG_PEEK) !== 0;
    let done = 0;
    let index = 0;
    while (done < dst.length && index < this.queue.length) {
      const chunk = this.queue[index];
      const part = Math.min(dst.length - done, chunk.data.length - chunk.start);
      dst.set(chunk.data.subarray(chunk.start, chunk.start + part), done);
      done += part;
      if (peek) {
        index++;
        continue;
      }
      chunk.start += part;
      if (chunk.start === chunk.data.length) this.queue.shift();
    }
    if (!peek) this.consumed(done);
    return { count: done, messageLength: done };
  }

  private takeMessage(dst: Uint8Array, flags: number): Received {
    const message = this.queue[0].data;
    const count = Math.min(dst.length, message.length);
    dst.set(message.subarray(0, count));
    if ((flags & MSG_PEEK) === 0) {
      this.queue.shift();
      this.consumed(message.length);
    }
    return { count, messageLength: message.length };
  }

  private consumed(bytes: number): void {
    this.queued -= bytes;
    if (this.peer !== undefined) wakeAll(this.peer.writeWaiters);
  }

  /**
   * Sends `src` to the peer and returns the count, or fails with EPIPE (the caller raises SIGPIPE
   * where Linux does), ECONNREFUSED, ENOTCONN, EMSGSIZE or EAGAIN.
   */
  send(task: Task, src: Uint8Array, flags: number): number | Promise<number> {
    const peer = this.checkPeer();
    const nonBlocking = (flags & MSG_DONTWAIT) !== 0 || (this.flags & O_NONBLOCK) !== 0;
    if (this.type !== SOCK_STREAM) {
      if (src.length > this.sendBuffer - DATAGRAM_HEADROOM) fail(Errno.EMSGSIZE);
      if (peer.queued > 0 && peer.queued + src.length > this.sendBuffer) {
        if (nonBlocking) fail(Errno.EAGAIN);
        return this.waitOn(task, this.writeWaiters).then(() => this.send(task, src, flags));
      }
      peer.enqueue(Buffer.from(src));
      return src.length;
    }
    return this.sendBytes(task, src, flags, 0, nonBlocking);
  }

  /** Sends src[done..] of a stream write, waiting for room unless non-blocking. */
  private sendBytes(task: Task, src: Uint8Array, flags: number, done: number, nonBlocking: boolean): number | Promise<number> {
    for (;;) {
      let peer: SocketPairEnd;
      try {
        peer = this.checkPeer();
      } catch (error) {
        if (done > 0) return done;
        throw error;
      }
      if (done === src.length && done > 0) return done;
      const room = this.sendBuffer - peer.queued;
      if (room > 0 || src.length === 0) {
        const part = Math.min(room, src.length - done);
        if (part > 0) peer.enqueue(Buffer.from(src.subarray(done, done + part)));
        done += part;
        if (done === src.length) return done;
        continue;
      }

      if (nonBlocking) return done > 0 ? done : fail(Errno.EAGAIN);
      const written = done;
      return this.waitOn(task, this.writeWaiters).then(
        () => this.sendBytes(task, src, flags, written, nonBlocking),
        (error: unknown) => {
          // A signal after part of the data went in: the call returns what it sent.
          if (written > 0 && error instanceof SysError) return written;
          throw error;
        },
      );
    }
  }

  /** Returns the peer a send may queue to, or fails as Linux's unix sendmsg does. */
  private checkPeer(): SocketPairEnd {
    if (this.sendShutdown) fail(Errno.EPIPE);
    const peer = this.peer;
    if (peer === undefined) return fail(Errno.ENOTCONN);
    if (peer.closed) {
      // Only a datagram socket gets here, because closing a connection-based peer sets sendShutdown.
      this.peer = undefined;
      return fail(Errno.ECONNREFUSED);
    }
    if (peer.receiveShutdown) fail(Errno.EPIPE);
    return peer;
  }

  private enqueue(data: Buffer): void {
    this.queue.push({ data, start: 0 });
    this.queued += data.length;
    wakeAll(this.readWaiters);
  }

  /** shutdown(2): `how` is SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2). */
  shutdown(how: number): void {
    const read = how === 0 || how === 2;
    const write = how === 1 || how === 2;
    if (read) this.receiveShutdown = true;
    if (write) this.sendShutdown = true;
    const peer = this.peer;
    // Only a connected stream or sequenced-packet peer learns of the shutdown, as in Linux.
    if (peer !== undefined && this.connectionBased) {
      if (read) peer.sendShutdown = true;
      if (write) peer.receiveShutdown = true;
      peer.wakeEveryone();
    }
    this.wakeEveryone();
  }

  override ioctl(task: Task, request: number, arg: number): number {
    if ((request >>> 0) !== FIONREAD) return fail(Errno.ENOTTY);
    const count = Buffer.alloc(4);
    const next = this.queue[0];
    const ready = this.type === SOCK_STREAM || next === undefined ? this.queued : next.data.length;
    count.writeInt32LE(ready);
    task.mm.copyOut(arg, count);
    return 0;
  }

  /** Ready events as Linux's unix_poll and unix_dgram_poll report them. */
  override readiness(): number {
    let events = 0;
    if (this.pendingError !== 0) events |= POLLERR;
    if (this.receiveShutdown) events |= EPOLLRDHUP | POLLIN | POLLRDNORM;
    if (this.receiveShutdown && this.sendShutdown) events |= POLLHUP;
    if (this.queue.length > 0) events |= POLLIN | POLLRDNORM;
    if (this.hasSendRoom()) events |= POLLOUT | POLLWRNORM | POLLWRBAND;
    return events;
  }

  /** Linux's unix_writable: at most a quarter of the send buffer is still unread by the peer. */
  private hasSendRoom(): boolean {
    const inFlight = this.peer !== undefined && !this.peer.closed ? this.peer.queued : 0;
    return inFlight * 4 <= this.sendBuffer;
  }

  /** Watches receives for POLLIN and the peer's reads for POLLOUT, so edge-triggered epoll gets each edge. */
  override watchReadiness(events: number, wake: () => void): CancelWatch {
    const read = (events & (POLLIN | POLLRDNORM)) !== 0 || (events & (POLLOUT | POLLWRNORM)) === 0;
    const write = (events & (POLLOUT | POLLWRNORM)) !== 0 || !read;
    if (read) this.readWaiters.add(wake);
    if (write) this.writeWaiters.add(wake);
    return () => {
      this.readWaiters.delete(wake);
      this.writeWaiters.delete(wake);
    };
  }

  private waitOn(task: Task, waiters: Set<() => void>): Promise<void> {
    return task.block<void>((resolve) => {
      waiters.add(resolve);
      return () => waiters.delete(resolve);
    });
  }

  private wakeEveryone(): void {
    wakeAll(this.readWaiters);
    wakeAll(this.writeWaiters);
  }

  override release(): void {
    if (this.closed) return;
    this.closed = true;
    const peer = this.peer;
    this.peer = undefined;
    if (peer !== undefined && this.connectionBased) {
      // Linux shuts the peer down both ways, and reports ECONNRESET once if data went unread here.
      peer.receiveShutdown = true;
      peer.sendShutdown = true;
      if (this.queue.length > 0) peer.pendingError = Errno.ECONNRESET;
    }
    this.queue.length = 0;
    this.queued = 0;
    if (peer !== undefined) peer.wakeEveryone();
  }
}

function wakeAll(waiters: Set<() => void>): void {
  if (waiters.size === 0) return;
  const woken = [...waiters];
  waiters.clear();
  for (const wake of woken) wake();
}
