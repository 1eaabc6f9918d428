/**
 * The sandbox's view of a host terminal that its stdio refers to. One Terminal exists per host
 * terminal device (identified by st_rdev), however many stdio descriptors refer to it. The first
 * one becomes the controlling terminal of init's session, with init's process group in the
 * foreground, as a terminal emulator's shell would have it.
 *
 * The line discipline stays the host's: termios, window size, flushing and flow control go to the
 * host terminal through the sentry's own ioctls. The session, the foreground process group and
 * job control are the sandbox's, because they name the sandbox's processes. A read by a process
 * outside the foreground group (and a write with TOSTOP, and a termios change) signals its group
 * with SIGTTIN or SIGTTOU, as Linux's n_tty does.
 *
 * The host terminal's termios are saved when the Terminal is created and put back by restore(),
 * which the sandbox calls when it ends however it ends.
 */
import createDebug from 'debug';
import { ERESTARTSYS, Errno, fail, SysError } from '../errno.js';
import { native } from '../native.js';
import { isPrivileged } from './credentials.js';
import { SIG_IGN, Signal, signalBit } from './signals/constants.js';
import { sendToGroup } from './signals/send.js';
import { kernelSigInfo } from './signals/siginfo.js';
import type { Kernel } from './kernel.js';
import type { Task } from './task.js';
import type { ThreadGroup } from './thread-group.js';

const log = createDebug('tsvisor:sentry:terminal');

/** Terminal ioctl requests, from <asm-generic/ioctls.h>. */
export const TerminalRequest = {
  TCGETS: 0x5401,
  TCSETS: 0x5402,
  TCSETSW: 0x5403,
  TCSETSF: 0x5404,
  TCGETA: 0x5405,
  TCSETA: 0x5406,
  TCSETAW: 0x5407,
  TCSETAF: 0x5408,
  TCSBRK: 0x5409,
  TCXONC: 0x540a,
  TCFLSH: 0x540b,
  TIOCSCTTY: 0x540e,
  TIOCGPGRP: 0x540f,
  TIOCSPGRP: 0x5410,
  TIOCOUTQ: 0x5411,
  TIOCGWINSZ: 0x5413,
  TIOCSWINSZ: 0x5414,
  FIONREAD: 0x541b,
  TIOCNOTTY: 0x5422,
  TIOCGSID: 0x5429,
} as const;

/** sizeof(struct termios) as the kernel's TCGETS writes it on x86-64, and its c_lflag offset. */
export const KERNEL_TERMIOS_SIZE = 36;
const LFLAG_OFFSET = 12;
/** struct termio of TCGETA: four unsigned short flags, c_line and NCC (8) control characters. */
const TERMIO_SIZE = 18;
const TERMIO_NCC = 8;
const TERMIOS_LINE_OFFSET = 16;
const WINSIZE_SIZE = 8;

/** c_lflag bit that makes background writes raise SIGTTOU. */
const TOSTOP = 0o400;
/** TCXONC actions that suspend and resume output. */
const TCOOFF = 0;
const TCOON = 1;

/** How often a TCSETSW, TCSETSF or tcdrain polls the host terminal's output queue while it drains. */
const DRAIN_POLL_MS = 10;

function checked(result: number): number {
  if (result < 0) fail(-result);
  return result;
}

function readInt32(task: Task, addr: number): number {
  return task.mm.copyIn(addr, 4).readInt32LE(0);
}

function writeInt32(task: Task, addr: number, value: number): void {
  const bytes = Buffer.alloc(4);
  bytes.writeInt32LE(value);
  task.mm.copyOut(addr, bytes);
}

/** Tests whether `task` blocks `signo` or its disposition is SIG_IGN, as Linux's is_ignored does. */
function ignoresOrBlocks(task: Task, signo: number): boolean {
  return (task.signals.blocked & signalBit(signo)) !== 0n || task.signals.actions[signo - 1].handler === SIG_IGN;
}

export class Terminal {
  /** The session that has this terminal as controlling terminal, or 0 when none has. */
  session = 0;
  /** The foreground process group, or 0 when none is set. */
  foregroundPgid = 0;

  private termiosChanged = false;
  private outputSuspended = false;
  private closed = false;

  private constructor(
    private readonly kernel: Kernel,
    /** The host device number that identifies the terminal. */
    readonly rdev: bigint,
    /** The Terminal's own duplicate of a host descriptor of the terminal, closed by close(). */
    private readonly hostFd: number,
    /** The host terminal's termios when the sandbox started, which restore() puts back. */
    private readonly originalTermios: Uint8Array,
  ) {}

  /**
   * Returns a Terminal for the host terminal behind `hostFd` (device number `rdev`), or undefined
   * when `hostFd` is not a terminal. The Terminal keeps its own duplicate of the descriptor.
   */
  static forDescriptor(kernel: Kernel, rdev: bigint, hostFd: number): Terminal | undefined {
    const termios = new Uint8Array(KERNEL_TERMIOS_SIZE);
    if (native.hostTcgets(hostFd, termios) < 0) return undefined;
    return new Terminal(kernel, rdev, checked(native.hostDup(hostFd)), termios);
  }

  /** Opens a new host descriptor of the terminal with `flags`, for an open of /dev/tty. */
  reopenHost(flags: number): number {
    if (this.closed) fail(Errno.EIO);
    return checked(native.hostReopen(this.hostFd, flags));
  }

  /** Makes the terminal the controlling terminal of `leader`'s session, with its process group in the foreground. */
  makeControlling(leader: ThreadGroup): void {
    this.session = leader.sid;
    this.foregroundPgid = leader.pgid;
    for (const group of this.kernel.threadGroups.values()) {
      if (!group.zombie && group.sid === leader.sid) group.tty = this;
    }
  }

  /** Detaches the terminal from its session: no process has it as controlling terminal any more. */
  private disassociate(): void {
    for (const group of this.kernel.threadGroups.values()) {
      if (group.tty === this) group.tty = undefined;
    }
    this.session = 0;
    this.foregroundPgid = 0;
  }

  /**
   * Applies job control to `task` before it reads (SIGTTIN) or changes (SIGTTOU) this terminal.
   * Returns when the task may go ahead. Otherwise it throws EIO (the group is orphaned, or the
   * task ignores SIGTTIN), or signals the task's process group and throws ERESTARTSYS, so that the
   * call runs again once the group is continued.
   */
  checkJobControl(task: Task, signo: number): void {
    const group = task.threadGroup;
    if (group.tty !== this || this.foregroundPgid === 0 || group.pgid === this.foregroundPgid) return;
    if (ignoresOrBlocks(task, signo)) {
      if (signo === Signal.SIGTTIN) fail(Errno.EIO);
      return;
    }
    if (this.kernel.isOrphanedProcessGroup(group.pgid)) fail(Errno.EIO);
    if (log.enabled) log('process group %d is in the background: sending signal %d', group.pgid, signo);
    for (const member of this.kernel.processGroup(group.pgid)) sendToGroup(member, kernelSigInfo(signo), task);
    fail(ERESTARTSYS);
  }

  /** Applies job control before a read from the terminal. */
  checkRead(task: Task): void {
    this.checkJobControl(task, Signal.SIGTTIN);
  }

  /** Applies job control before a write to the terminal: SIGTTOU only when TOSTOP is set. */
  checkWrite(task: Task): void {
    const group = task.threadGroup;
    if (group.tty !== this || this.foregroundPgid === 0 || group.pgid === this.foregroundPgid) return;
    const termios = new Uint8Array(KERNEL_TERMIOS_SIZE);
    if (native.hostTcgets(this.hostFd, termios) < 0) return;
    const lflag = Buffer.from(termios.buffer).readUInt32LE(LFLAG_OFFSET);
    if ((lflag & TOSTOP) !== 0) this.checkJobControl(task, Signal.SIGTTOU);
  }

  /**
   * Implements the terminal ioctl `request` for `task` on a description of this terminal
   * (`readable`: opened for reading). Returns undefined for requests that are not terminal ones.
   */
  ioctl(task: Task, request: number, arg: number, readable: boolean): number | Promise<number> | undefined {
    if (this.closed) fail(Errno.EIO);
    switch (request) {
      case TerminalRequest.TCGETS: {
        const termios = new Uint8Array(KERNEL_TERMIOS_SIZE);
        checked(native.hostTcgets(this.hostFd, termios));
        task.mm.copyOut(arg, termios);
        return 0;
      }
      case TerminalRequest.TCSETS:
      case TerminalRequest.TCSETSW:
      case TerminalRequest.TCSETSF:
        this.checkJobControl(task, Signal.SIGTTOU);
        return this.setTermios(task, request, new Uint8Array(task.mm.copyIn(arg, KERNEL_TERMIOS_SIZE)));
      case TerminalRequest.TCGETA:
        task.mm.copyOut(arg, this.getTermio());
        return 0;
      case TerminalRequest.TCSETA:
      case TerminalRequest.TCSETAW:
      case TerminalRequest.TCSETAF:
        this.checkJobControl(task, Signal.SIGTTOU);
        return this.setTermios(task, request - TerminalRequest.TCSETA + TerminalRequest.TCSETS, this.termiosFromTermio(task.mm.copyIn(arg, TERMIO_SIZE)));
      case TerminalRequest.TCSBRK:
        // NOTE: tcsendbreak (argument 0) only drains; no break condition is sent to the host terminal.
        this.checkJobControl(task, Signal.SIGTTOU);
        return this.drain(task).then(() => 0);
      case TerminalRequest.TCXONC:
        this.checkJobControl(task, Signal.SIGTTOU);
        checked(native.hostTcxonc(this.hostFd, arg | 0));
        if ((arg | 0) === TCOOFF) this.outputSuspended = true;
        if ((arg | 0) === TCOON) this.outputSuspended = false;
        return 0;
      case TerminalRequest.TCFLSH:
        this.checkJobControl(task, Signal.SIGTTOU);
        return checked(native.hostTcflsh(this.hostFd, arg | 0));
      case TerminalRequest.TIOCOUTQ:
        writeInt32(task, arg, checked(native.hostOutq(this.hostFd)));
        return 0;
      case TerminalRequest.FIONREAD:
        writeInt32(task, arg, checked(native.hostFionread(this.hostFd)));
        return 0;
      case TerminalRequest.TIOCGWINSZ: {
        const winsize = new Uint8Array(WINSIZE_SIZE);
        checked(native.hostGetWinsize(this.hostFd, winsize));
        task.mm.copyOut(arg, winsize);
        return 0;
      }
      case TerminalRequest.TIOCSWINSZ:
        return this.setWinsize(task, arg);
      case TerminalRequest.TIOCGPGRP:
        if (task.threadGroup.tty !== this) fail(Errno.ENOTTY);
        writeInt32(task, arg, this.foregroundPgid);
        return 0;
      case TerminalRequest.TIOCSPGRP:
        return this.setForeground(task, arg);
      case TerminalRequest.TIOCGSID:
        if (task.threadGroup.tty !== this || this.session === 0) fail(Errno.ENOTTY);
        writeInt32(task, arg, this.session);
        return 0;
      case TerminalRequest.TIOCSCTTY:
        return this.acquire(task, arg, readable);
      case TerminalRequest.TIOCNOTTY:
        return this.release(task);
      default:
        return undefined;
    }
  }

  private setTermios(task: Task, request: number, termios: Uint8Array): number | Promise<number> {
    const apply = (): number => {
      checked(native.hostTcsets(this.hostFd, request, termios));
      this.termiosChanged = true;
      return 0;
    };
    // TCSETSW and TCSETSF first wait for output to drain. The host ioctl would wait inside the
    // sentry's thread, so the wait happens here and the host call then finds nothing to drain.
    if (request === TerminalRequest.TCSETS) return apply();
    return this.drain(task).then(apply);
  }

  /** Resolves once the host terminal has sent all written output; a signal ends the wait with ERESTARTSYS. */
  private drain(task: Task): Promise<void> {
    if (checked(native.hostOutq(this.hostFd)) === 0) return Promise.resolve();
    return task.block<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const queued = native.hostOutq(this.hostFd);
        if (queued > 0) return;
        clearInterval(timer);
        if (queued < 0) reject(new SysError(-queued));
        else resolve();
      }, DRAIN_POLL_MS);
      return () => clearInterval(timer);
    });
  }

  /** Returns the struct termio view of the current termios: the low 16 bits of each flag word. */
  private getTermio(): Buffer {
    const termios = Buffer.alloc(KERNEL_TERMIOS_SIZE);
    checked(native.hostTcgets(this.hostFd, termios));
    const termio = Buffer.alloc(TERMIO_SIZE);
    for (let i = 0; i < 4; i++) termio.writeUInt16LE(termios.readUInt32LE(i * 4) & 0xffff, i * 2);
    termios.copy(termio, 8, TERMIOS_LINE_OFFSET, TERMIOS_LINE_OFFSET + 1 + TERMIO_NCC);
    return termio;
  }

  /** Merges a struct termio into the current termios, keeping the upper flag bits as Linux does. */
  private termiosFromTermio(termio: Buffer): Uint8Array {
    const termios = Buffer.alloc(KERNEL_TERMIOS_SIZE);
    checked(native.hostTcgets(this.hostFd, termios));
    for (let i = 0; i < 4; i++) {
      const upper = termios.readUInt32LE(i * 4) & 0xffff0000;
      termios.writeUInt32LE((upper | termio.readUInt16LE(i * 2)) >>> 0, i * 4);
    }
    termio.copy(termios, TERMIOS_LINE_OFFSET, 8, 8 + 1 + TERMIO_NCC);
    return termios;
  }

  /** Sets the window size and, when it changed, sends SIGWINCH to the foreground process group. */
  private setWinsize(task: Task, arg: number): number {
    const requested = new Uint8Array(task.mm.copyIn(arg, WINSIZE_SIZE));
    const current = new Uint8Array(WINSIZE_SIZE);
    checked(native.hostGetWinsize(this.hostFd, current));
    checked(native.hostSetWinsize(this.hostFd, requested));
    if (Buffer.compare(current, requested) !== 0 && this.foregroundPgid !== 0) {
      for (const group of this.kernel.processGroup(this.foregroundPgid)) sendToGroup(group, kernelSigInfo(Signal.SIGWINCH), task);
    }
    return 0;
  }

  /**
   * TIOCSPGRP, as tcsetpgrp(3) calls it. The terminal must be the caller's controlling terminal
   * and belong to its session (ENOTTY), the caller must be in the foreground or let SIGTTOU
   * through without stopping, and the new group must exist (ESRCH) in the caller's session (EPERM).
   */
  private setForeground(task: Task, arg: number): number {
    try {
      this.checkJobControl(task, Signal.SIGTTOU);
    } catch (error) {
      // Linux turns the orphaned-group EIO into ENOTTY for this request.
      if (error instanceof SysError && error.errno === Errno.EIO) fail(Errno.ENOTTY);
      throw error;
    }
    const pgid = readInt32(task, arg);
    if (pgid < 0) fail(Errno.EINVAL);
    const group = task.threadGroup;
    if (group.tty !== this || this.session !== group.sid) fail(Errno.ENOTTY);

    // Like Linux, a pid that names no process group but a process also names a session.
    const members = this.kernel.processGroup(pgid);
    const owner = members[0] ?? this.kernel.threadGroups.get(pgid);
    if (owner === undefined || owner.zombie) fail(Errno.ESRCH);
    if (owner.sid !== group.sid) fail(Errno.EPERM);
    this.foregroundPgid = pgid;
    return 0;
  }

  /**
   * TIOCSCTTY: a session leader without a controlling terminal acquires this one. When another
   * session has it, a privileged caller passing 1 takes it away from that session.
   */
  private acquire(task: Task, arg: number, readable: boolean): number {
    const group = task.threadGroup;
    const leader = group.sid === group.tgid;
    if (leader && this.session === group.sid) return 0;
    if (!leader || group.tty !== undefined) fail(Errno.EPERM);
    const privileged = isPrivileged(task.creds);
    if (this.session !== 0) {
      if (arg !== 1 || !privileged) fail(Errno.EPERM);
      this.disassociate();
    }
    if (!readable && !privileged) fail(Errno.EPERM);
    this.makeControlling(group);
    return 0;
  }

  /**
   * TIOCNOTTY: the caller gives up its controlling terminal. When a session leader does, the whole
   * session loses it, and the foreground process group gets SIGHUP and SIGCONT.
   */
  private release(task: Task): number {
    const group = task.threadGroup;
    if (group.tty !== this) fail(Errno.ENOTTY);
    if (group.sid !== group.tgid) {
      group.tty = undefined;
      return 0;
    }
    const foreground = this.foregroundPgid === 0 ? [] : this.kernel.processGroup(this.foregroundPgid);
    this.disassociate();
    for (const member of foreground) sendToGroup(member, kernelSigInfo(Signal.SIGHUP), task);
    for (const member of foreground) sendToGroup(member, kernelSigInfo(Signal.SIGCONT), task);
    return 0;
  }

  /**
   * Puts back the host terminal's termios saved at creation, and resumes output that the program
   * suspended. Synchronous, so it can run from a process 'exit' handler. Idempotent.
   */
  restore(): void {
    if (this.closed) return;
    if (this.termiosChanged) {
      const result = native.hostTcsets(this.hostFd, TerminalRequest.TCSETS, this.originalTermios);
      if (result < 0) log('cannot restore the terminal settings: errno %d', -result);
      else this.termiosChanged = false;
    }
    if (this.outputSuspended) {
      native.hostTcxonc(this.hostFd, TCOON);
      this.outputSuspended = false;
    }
  }

  /** Restores the terminal and closes the host descriptor. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.restore();
    this.closed = true;
    native.hostClose(this.hostFd);
  }
}
