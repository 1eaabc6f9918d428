/**
 * A file description over one of runsc's own descriptors (stdin, stdout, stderr): a terminal, a
 * pipe, a socket or a file. The sentry must not block its event loop on them, and must not change
 * flags of a description that the shell and other processes share. So a pipe, FIFO or terminal is
 * reopened through /proc/self/fd as a private non-blocking description. A socket is used with
 * MSG_DONTWAIT. A regular file is used directly, because its reads and writes never wait for
 * another process. When a read or write would block, the call returns a promise that settles once
 * a libuv poll watch reports the descriptor ready.
 *
 * A stream over a terminal carries the sandbox's Terminal for it (kernel/terminal.ts), which
 * implements the terminal ioctls and applies job control to reads and writes.
 */
import { readlinkSync } from 'node:fs';

import { Errno, fail, SysError } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { KERNEL_TERMIOS_SIZE, type Terminal, TerminalRequest } from '../kernel/terminal.js';
import { native } from '../native.js';
import type { FileStat } from './file.js';
import { FileBase } from './file-base.js';
import { O_ACCMODE, O_APPEND, O_NONBLOCK, O_RDWR, O_TRUNC, O_WRONLY, S_IFBLK, S_IFCHR, S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK, SEEK_CUR, SEEK_END, SEEK_SET } from './flags.js';
import { newStatBuffer, statFromHost } from './host-stat.js';
import { ALWAYS_READY, type CancelWatch, POLLERR, POLLIN, POLLOUT, POLLPRI, POLLRDNORM, POLLWRNORM } from './poll-events.js';
import { type FsStat, HOST_STATFS_FIELDS, statfsFromHost } from './statfs.js';

const { TCGETS, TIOCGWINSZ, FIONREAD } = TerminalRequest;

/** sizeof(struct winsize). */
const WINSIZE_SIZE = 8;

type StreamKind = 'file' | 'socket' | 'stream';

/** Major and minor device number of /dev/tty, which stands for the opener's controlling terminal. */
const TTY_MAJOR = 5;
const TTY_MINOR = 0;

/** Tests whether a character device number is /dev/tty's. */
export function isControllingTerminalDevice(major: number, minor: number): boolean {
  return major === TTY_MAJOR && minor === TTY_MINOR;
}

/** Opens /dev/tty for `task`: its controlling terminal, or ENXIO when it has none. */
export function openControllingTerminal(task: Task | undefined, flags: number): HostStream {
  const terminal = task?.threadGroup.tty;
  if (terminal === undefined) return fail(Errno.ENXIO);
  return HostStream.openTerminal(terminal, flags);
}

function checked(result: number): number {
  if (result < 0) fail(-result);
  return result;
}

export class HostStream extends FileBase {
  private closed = false;
  private watch = 0;
  private rejectWait: ((error: SysError) => void) | undefined;
  /** The sandbox's Terminal for the host terminal behind this stream, or undefined for other streams. */
  terminal: Terminal | undefined;

  private constructor(
    private readonly fd: number,
    private readonly kind: StreamKind,
    /** Whether `fd` is a private O_NONBLOCK description; otherwise readiness is polled before each call. */
    private readonly nonBlocking: boolean,
    flags: number,
    path: string,
    /** The host device number, for a character device such as a terminal. */
    readonly rdev?: bigint,
  ) {
    super(flags, path);
  }

  /** Opens the terminal again with `flags`, as open("/dev/tty") does for a process whose controlling terminal it is. */
  static openTerminal(terminal: Terminal, flags: number): HostStream {
    const fd = terminal.reopenHost((flags & O_ACCMODE) | O_NONBLOCK);
    const stream = new HostStream(fd, 'stream', true, flags & ~O_TRUNC, '/dev/tty', terminal.rdev);
    stream.terminal = terminal;
    return stream;
  }

  /** The host descriptor, which the sandbox duplicates to create the stream's Terminal. */
  get hostFd(): number {
    return this.fd;
  }

  /**
   * Wraps host descriptor `hostFd`, which stays open and unchanged: the stream uses its own copy,
   * closed on release(). Returns undefined when `hostFd` is not open.
   */
  static wrap(hostFd: number): HostStream | undefined {
    const hostFlags = native.hostGetFl(hostFd);
    if (hostFlags < 0) return undefined;
    const raw = newStatBuffer();
    checked(native.hostFstat(hostFd, raw));
    const type = Number(raw[2]) & S_IFMT;

    let path: string;
    try {
      path = readlinkSync(`/proc/self/fd/${hostFd}`, 'latin1');
    } catch {
      path = `host fd ${hostFd}`;
    }

    // The application gets the access mode and O_APPEND of the real descriptor, but starts in
    // blocking mode even when Node has set O_NONBLOCK on a shared pipe.
    const flags = hostFlags & ~O_NONBLOCK;
    if (type === S_IFREG || type === S_IFBLK) {
      return new HostStream(checked(native.hostDup(hostFd)), 'file', false, flags, path);
    }
    if (type === S_IFSOCK) {
      return new HostStream(checked(native.hostDup(hostFd)), 'socket', true, flags, path);
    }
    const rdev = type === S_IFCHR ? BigInt(raw[6]) : undefined;
    if (type === S_IFIFO || type === S_IFCHR) {
      const reopened = native.hostReopen(hostFd, (hostFlags & O_ACCMODE) | O_NONBLOCK);
      if (reopened >= 0) return new HostStream(reopened, 'stream', true, flags, path, rdev);
    }
    // NOTE: without a private non-blocking description (a pipe whose reader is gone, an unusual
    // device), a write larger than the free pipe space can still block the event loop.
    return new HostStream(checked(native.hostDup(hostFd)), 'stream', false, flags, path, rdev);
  }

  /**
   * Opens the same pipe, terminal or file again, as /proc/self/fd/N does. The access mode may not
   * exceed this description's, so the application cannot gain write access to runsc's stdin.
   */
  override reopen(flags: number): HostStream {
    const access = flags & O_ACCMODE;
    const current = this.flags & O_ACCMODE;
    if (access !== current && current !== O_RDWR) fail(Errno.EACCES);
    const hostFlags = this.kind === 'file' ? access | (flags & (O_APPEND | O_TRUNC)) : access | O_NONBLOCK;
    const fd = checked(native.hostReopen(this.fd, hostFlags));
    const stream = new HostStream(fd, this.kind, this.kind === 'stream', flags, this.path, this.rdev);
    stream.terminal = this.terminal;
    return stream;
  }

  override statfs(): FsStat {
    const raw = new BigInt64Array(HOST_STATFS_FIELDS);
    checked(native.hostFstatfs(this.fd, raw));
    return statfsFromHost(raw);
  }

  stat(): FileStat {
    const raw = newStatBuffer();
    checked(native.hostFstat(this.fd, raw));
    return statFromHost(raw);
  }

  private readOnce(dst: Uint8Array): number {
    if (this.kind === 'socket') return native.hostRecv(this.fd, dst);
    if (!this.nonBlocking && this.kind === 'stream' && native.hostPoll(this.fd, POLLIN) === 0) return -Errno.EAGAIN;
    return native.hostPread(this.fd, dst, -1);
  }

  private writeOnce(src: Uint8Array): number {
    if (this.kind === 'socket') return native.hostSend(this.fd, src);
    if (!this.nonBlocking && this.kind === 'stream' && native.hostPoll(this.fd, POLLOUT) === 0) return -Errno.EAGAIN;
    return native.hostPwrite(this.fd, src, -1);
  }

  override read(task: Task, dst: Uint8Array): number | Promise<number> {
    this.terminal?.checkRead(task);
    if (dst.length === 0) return 0;
    const n = this.readOnce(dst);
    if (n >= 0) return n;
    if (n !== -Errno.EAGAIN || this.flags & O_NONBLOCK) return fail(-n);
    return this.waitReady(task, POLLIN).then(() => this.read(task, dst));
  }

  /** Writes all of `src` unless the application asked for O_NONBLOCK, as a blocking write(2) does. */
  override write(task: Task, src: Uint8Array): number | Promise<number> {
    this.terminal?.checkWrite(task);
    let done = 0;
    while (done < src.length) {
      const n = this.writeOnce(done === 0 ? src : src.subarray(done));
      if (n >= 0) {
        done += n;
        continue;
      }
      if (n !== -Errno.EAGAIN) {
        if (done > 0) return done;
        return fail(-n);
      }
      if (this.flags & O_NONBLOCK) {
        if (done > 0) return done;
        return fail(Errno.EAGAIN);
      }
      const written = done;
      return this.waitReady(task, POLLOUT).then(
        async () => written + (await this.write(task, src.subarray(written))),
        (error: unknown) => {
          // A signal after part of the data went out: the call returns what it wrote, so that a
          // restart cannot write it twice.
          if (written > 0 && error instanceof SysError) return written;
          throw error;
        },
      );
    }
    return done;
  }

  override pread(_task: Task, dst: Uint8Array, offset: number): number {
    if (this.kind !== 'file') return fail(Errno.ESPIPE);
    if (offset < 0) fail(Errno.EINVAL);
    return checked(native.hostPread(this.fd, dst, offset));
  }

  override pwrite(_task: Task, src: Uint8Array, offset: number): number {
    if (this.kind !== 'file') return fail(Errno.ESPIPE);
    if (offset < 0) fail(Errno.EINVAL);
    return checked(native.hostPwrite(this.fd, src, offset));
  }

  override seek(offset: number, whence: number): number {
    if (this.kind !== 'file') return fail(Errno.ESPIPE);
    if (whence !== SEEK_SET && whence !== SEEK_CUR && whence !== SEEK_END) fail(Errno.EINVAL);
    return checked(native.hostLseek(this.fd, offset, whence));
  }

  /**
   * Passes terminal requests to the sandbox's Terminal when the stream has one. Otherwise
   * implements TCGETS and TIOCGWINSZ by querying the real terminal (ENOTTY when it is not one),
   * and FIONREAD by asking the host.
   */
  override ioctl(task: Task, request: number, arg: number): number | Promise<number> {
    if (this.terminal !== undefined) {
      const result = this.terminal.ioctl(task, request, arg, (this.flags & O_ACCMODE) !== O_WRONLY);
      if (result !== undefined) return result;
      return fail(Errno.ENOTTY);
    }
    if (request === FIONREAD) {
      const available = Buffer.alloc(4);
      available.writeInt32LE(checked(native.hostFionread(this.fd)));
      task.mm.copyOut(arg, available);
      return 0;
    }
    if (request === TCGETS) {
      const termios = new Uint8Array(KERNEL_TERMIOS_SIZE);
      checked(native.hostTcgets(this.fd, termios));
      task.mm.copyOut(arg, termios);
      return 0;
    }
    if (request === TIOCGWINSZ) {
      const winsize = new Uint8Array(WINSIZE_SIZE);
      checked(native.hostGetWinsize(this.fd, winsize));
      task.mm.copyOut(arg, winsize);
      return 0;
    }
    return fail(Errno.ENOTTY);
  }

  /** Asks the host which events are ready; a regular file is always ready, as in Linux. */
  override readiness(): number {
    if (this.kind === 'file') return ALWAYS_READY;
    if (this.closed) return POLLERR;
    const events = native.hostPoll(this.fd, POLLIN | POLLOUT | POLLPRI);
    if (events < 0) return POLLERR;
    return events | (events & POLLIN ? POLLRDNORM : 0) | (events & POLLOUT ? POLLWRNORM : 0);
  }

  /**
   * Watches the host descriptor on the libuv loop. Hang-ups and errors are reported by epoll
   * whatever the events, so a watch for them alone waits for POLLIN.
   */
  override watchReadiness(events: number, wake: () => void): CancelWatch {
    if (this.kind === 'file' || this.closed) return () => {};
    let hostEvents = 0;
    if (events & (POLLIN | POLLRDNORM | POLLPRI)) hostEvents |= POLLIN;
    if (events & (POLLOUT | POLLWRNORM)) hostEvents |= POLLOUT;
    const id = native.hostWatchFd(this.fd, hostEvents === 0 ? POLLIN : hostEvents, () => wake());
    // NOTE: a descriptor epoll rejects is not watched. Such files (EPERM: regular files) are
    // always ready, so the caller does not wait on them, and only a timeout or signal ends a wait
    // on any other unwatchable descriptor.
    if (id < 0) return () => {};
    return () => native.hostUnwatchFd(id);
  }

  /**
   * Resolves once the descriptor reports `events`, or right away when it cannot be polled. The
   * wait goes through Task.block, so a signal ends it with ERESTARTSYS and removes the watch.
   */
  private waitReady(task: Task, events: number): Promise<void> {
    if (this.closed) return Promise.reject(new SysError(Errno.EBADF));
    return task.block<void>((resolve, reject) => {
      const id = native.hostWatchFd(this.fd, events, () => {
        this.watch = 0;
        this.rejectWait = undefined;
        resolve();
      });
      // epoll rejects regular files (EPERM): they are always ready, so the caller just retries.
      if (id < 0) {
        if (id === -Errno.EPERM) resolve();
        else reject(new SysError(-id));
        return () => {};
      }
      this.watch = id;
      this.rejectWait = reject;
      return () => {
        if (this.watch !== id) return;
        native.hostUnwatchFd(id);
        this.watch = 0;
        this.rejectWait = undefined;
      };
    });
  }

  override release(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.watch !== 0) {
      native.hostUnwatchFd(this.watch);
      this.watch = 0;
      this.rejectWait?.(new SysError(Errno.EBADF));
      this.rejectWait = undefined;
    }
    native.hostClose(this.fd);
  }
}
