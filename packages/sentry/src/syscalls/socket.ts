/**
 * Unix domain sockets: socket, connect, and socketpair with the calls that use its connected
 * pairs. Nothing in the sandbox listens, so connect reports what Linux reports for a socket path
 * without a listener: ENOENT when the path does not exist, ECONNREFUSED when it does. Other
 * address families are not supported (no network).
 */
import { Errno, fail, SysError } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { SI_USER, Signal } from '../kernel/signals/constants.js';
import { sendToGroup } from '../kernel/signals/send.js';
import { userSigInfo } from '../kernel/signals/siginfo.js';
import { Prot } from '../mm/flags.js';
import { AT_FDCWD, O_NONBLOCK } from '../vfs/flags.js';
import { MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC, type Received, SocketPairEnd } from '../vfs/socket-pair.js';
import { UnixSocket } from '../vfs/unix-socket.js';
import { registerSyscall } from './table.js';

export const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;

const SOCK_STREAM = 1;
const SOCK_RAW = 3;
const SOCK_DGRAM = 2;
const SOCK_SEQPACKET = 5;
const SOCK_TYPE_MASK = 0xf;
const SOCK_NONBLOCK = 0x800;
const SOCK_CLOEXEC = 0x80000;

/** sizeof(struct sockaddr_un): a 2-byte family and a 108-byte path. */
const SOCKADDR_UN_SIZE = 110;
const SUN_PATH_OFFSET = 2;

function socket(task: Task, domainBits: number, typeBits: number, protocolBits: number): number {
  const domain = domainBits | 0;
  const typeAndFlags = typeBits | 0;
  const protocol = protocolBits | 0;
  if ((typeAndFlags & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC)) !== 0) fail(Errno.EINVAL);
  if (domain !== AF_UNIX) fail(Errno.EAFNOSUPPORT);
  const type = unixSocketType(typeAndFlags, protocol);

  const flags = (typeAndFlags & SOCK_NONBLOCK) !== 0 ? O_NONBLOCK : 0;
  const file = new UnixSocket(type, flags, task.creds.euid, task.creds.egid);
  try {
    return task.fdTable.install(file, (typeAndFlags & SOCK_CLOEXEC) !== 0);
  } catch (error) {
    file.decRef();
    throw error;
  }
}

/** Returns the socket type Linux gives an AF_UNIX socket of `requested` type (SOCK_RAW becomes SOCK_DGRAM). */
function unixSocketType(typeAndFlags: number, protocol: number): number {
  if ((typeAndFlags & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC)) !== 0) fail(Errno.EINVAL);
  if (protocol !== 0 && protocol !== AF_UNIX) fail(Errno.EPROTONOSUPPORT);
  const type = typeAndFlags & SOCK_TYPE_MASK;
  if (type === SOCK_RAW) return SOCK_DGRAM;
  if (type !== SOCK_STREAM && type !== SOCK_DGRAM && type !== SOCK_SEQPACKET) fail(Errno.ESOCKTNOSUPPORT);
  return type;
}

function socketpair(task: Task, domainBits: number, typeBits: number, protocolBits: number, addr: number): number {
  const domain = domainBits | 0;
  const typeAndFlags = typeBits | 0;
  if ((typeAndFlags & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC)) !== 0) fail(Errno.EINVAL);
  // Linux creates IP sockets and then finds that they cannot be paired.
  if (domain === AF_INET || domain === AF_INET6) fail(Errno.EOPNOTSUPP);
  if (domain !== AF_UNIX) fail(Errno.EAFNOSUPPORT);
  const type = unixSocketType(typeAndFlags, protocolBits | 0);

  const flags = (typeAndFlags & SOCK_NONBLOCK) !== 0 ? O_NONBLOCK : 0;
  const cloexec = (typeAndFlags & SOCK_CLOEXEC) !== 0;
  const [first, second] = SocketPairEnd.create(type, flags, task.creds.euid, task.creds.egid);
  const table = task.fdTable;
  let firstFd: number;
  try {
    firstFd = table.install(first, cloexec);
  } catch (error) {
    first.decRef();
    second.decRef();
    throw error;
  }
  let secondFd: number;
  try {
    secondFd = table.install(second, cloexec);
  } catch (error) {
    table.close(firstFd);
    second.decRef();
    throw error;
  }

  const fds = Buffer.alloc(8);
  fds.writeInt32LE(firstFd, 0);
  fds.writeInt32LE(secondFd, 4);
  try {
    task.mm.copyOut(addr, fds);
  } catch (error) {
    table.close(firstFd);
    table.close(secondFd);
    throw error;
  }
  return 0;
}

function connect(task: Task, fd: number, addr: number, lengthBits: number): number {
  const file = task.fdTable.get(fd);
  if (!(file instanceof UnixSocket)) fail(Errno.ENOTSOCK);
  if (file.connected) fail(Errno.EISCONN);
  const length = lengthBits | 0;
  if (length <= SUN_PATH_OFFSET || length > SOCKADDR_UN_SIZE) fail(Errno.EINVAL);
  const address = task.mm.copyIn(addr, length);
  if (address.readUInt16LE(0) !== AF_UNIX) fail(Errno.EINVAL);

  // An abstract address (leading NUL) names no file, and nothing in the sandbox can bind one.
  if (address[SUN_PATH_OFFSET] === 0) fail(Errno.ECONNREFUSED);
  const end = address.indexOf(0, SUN_PATH_OFFSET);
  const path = address.toString('latin1', SUN_PATH_OFFSET, end < 0 ? length : end);
  task.kernel.vfs.stat(task.fs, AT_FDCWD, path, true, task);
  return fail(Errno.ECONNREFUSED);
}

const MSG_OOB = 0x1;
const MSG_NOSIGNAL = 0x4000;

const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_ERROR = 4;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_DOMAIN = 39;

const SHUT_RDWR = 2;

/** Largest iovec array sendmsg and recvmsg accept (UIO_MAXIOV). */
const UIO_MAXIOV = 1024;

/** Offsets in struct msghdr (x86-64): name, namelen, iov, iovlen, control, controllen, flags. */
const MSGHDR = { name: 0, namelen: 8, iov: 16, iovlen: 24, control: 32, controllen: 40, flags: 48, size: 56 } as const;

/** Largest buffer one send or receive allocates; a larger request transfers less, as sockets may. */
const MAX_TRANSFER = 64 * 1024 * 1024;

function socketFile(task: Task, fd: number): UnixSocket {
  const file = task.fdTable.get(fd | 0);
  if (!(file instanceof UnixSocket)) fail(Errno.ENOTSOCK);
  return file;
}

function connectedSocket(task: Task, fd: number): SocketPairEnd {
  const file = socketFile(task, fd);
  if (!(file instanceof SocketPairEnd) || !file.connected) fail(Errno.ENOTCONN);
  return file;
}

interface IoVector {
  readonly base: number;
  readonly length: number;
}

function readIoVectors(task: Task, addr: number, count: number): IoVector[] {
  if (count < 0 || count > UIO_MAXIOV) fail(Errno.EMSGSIZE);
  const raw = task.mm.copyIn(addr, count * 16);
  const vectors: IoVector[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const base = Number(raw.readBigUInt64LE(i * 16));
    const length = Number(raw.readBigInt64LE(i * 16 + 8));
    if (length < 0) fail(Errno.EINVAL);
    total += length;
    if (total > MAX_TRANSFER) fail(Errno.EINVAL);
    vectors.push({ base, length });
  }
  return vectors;
}

function totalLength(vectors: readonly IoVector[]): number {
  return vectors.reduce((sum, vector) => sum + vector.length, 0);
}

function gather(task: Task, vectors: readonly IoVector[]): Buffer {
  return Buffer.concat(vectors.map((vector) => task.mm.copyIn(vector.base, vector.length)));
}

function scatter(task: Task, vectors: readonly IoVector[], data: Uint8Array): void {
  let done = 0;
  for (const vector of vectors) {
    if (done === data.length) break;
    const part = Math.min(vector.length, data.length - done);
    task.mm.copyOut(vector.base, data.subarray(done, done + part));
    done += part;
  }
}

/** Runs `operation` holding a reference on `file`, so a close by another thread cannot release it while the call waits. */
function withReference<T>(file: UnixSocket, operation: () => T | Promise<T>): T | Promise<T> {
  file.incRef();
  let result: T | Promise<T>;
  try {
    result = operation();
  } catch (error) {
    file.decRef();
    throw error;
  }
  if (!(result instanceof Promise)) {
    file.decRef();
    return result;
  }
  return result.finally(() => file.decRef());
}

/** Raises SIGPIPE for EPIPE from a stream send without MSG_NOSIGNAL, as Linux's unix_stream_sendmsg does. */
function raiseSigpipe(task: Task, socket: UnixSocket, flags: number, error: unknown): never {
  if (error instanceof SysError && error.errno === Errno.EPIPE && socket.type === SOCK_STREAM && (flags & MSG_NOSIGNAL) === 0) {
    sendToGroup(task.threadGroup, userSigInfo(Signal.SIGPIPE, SI_USER, task.tgid, task.creds.uid), task);
  }
  throw error;
}

function sendData(task: Task, socket: SocketPairEnd, data: Uint8Array, flags: number): number | Promise<number> {
  if ((flags & MSG_OOB) !== 0) fail(Errno.EOPNOTSUPP);
  try {
    const result = withReference(socket, () => socket.send(task, data, flags));
    if (typeof result === 'number') return result;
    return result.catch((error: unknown) => raiseSigpipe(task, socket, flags, error));
  } catch (error) {
    return raiseSigpipe(task, socket, flags, error);
  }
}

/**
 * Checks a destination address: a connected stream or sequenced-packet socket ignores it or fails
 * with EISCONN as Linux does, and a datagram socket could only reach a bound path, which nothing
 * in the sandbox has.
 */
function checkDestination(task: Task, socket: UnixSocket, addr: number, length: number): void {
  if (addr === 0 || length === 0 || socket.type === SOCK_SEQPACKET) return;
  if (socket.type === SOCK_STREAM) fail(Errno.EISCONN);
  if (length < 0 || length > SOCKADDR_UN_SIZE) fail(Errno.EINVAL);
  const address = task.mm.copyIn(addr, length);
  if (length <= SUN_PATH_OFFSET || address.readUInt16LE(0) !== AF_UNIX) fail(Errno.EINVAL);
  fail(Errno.ECONNREFUSED);
}

function sendto(task: Task, fd: number, addr: number, lengthBits: number, flagsBits: number, destination: number, destinationLength: number): number | Promise<number> {
  const socket = socketFile(task, fd);
  const flags = flagsBits | 0;
  checkDestination(task, socket, destination, destinationLength | 0);
  const pair = connectedSocket(task, fd);
  const length = Math.min(lengthBits, MAX_TRANSFER);
  if (length < 0) fail(Errno.EFAULT);
  const data = task.mm.copyIn(addr, length);
  return sendData(task, pair, data, flags);
}

function sendmsg(task: Task, fd: number, header: number, flagsBits: number): number | Promise<number> {
  const socket = socketFile(task, fd);
  const flags = flagsBits | 0;
  const msg = task.mm.copyIn(header, MSGHDR.size);
  checkDestination(task, socket, Number(msg.readBigUInt64LE(MSGHDR.name)), msg.readInt32LE(MSGHDR.namelen));
  // NOTE: control messages (SCM_RIGHTS, SCM_CREDENTIALS) are not implemented.
  if (msg.readBigUInt64LE(MSGHDR.controllen) !== 0n) fail(Errno.EINVAL);
  const pair = connectedSocket(task, fd);
  const vectors = readIoVectors(task, Number(msg.readBigUInt64LE(MSGHDR.iov)), Number(msg.readBigInt64LE(MSGHDR.iovlen)));
  return sendData(task, pair, gather(task, vectors), flags);
}

function receiveData(task: Task, socket: SocketPairEnd, length: number, flags: number, finish: (data: Buffer, received: Received) => number): number | Promise<number> {
  if ((flags & MSG_OOB) !== 0) fail(Errno.EOPNOTSUPP);
  const buffer = Buffer.alloc(length);
  const result = withReference(socket, () => socket.receive(task, buffer, flags));
  if (result instanceof Promise) return result.then((received) => finish(buffer, received));
  return finish(buffer, result);
}

/** The count a receive returns: the whole message length with MSG_TRUNC on a message socket. */
function receivedCount(socket: UnixSocket, received: Received, flags: number): number {
  return (flags & MSG_TRUNC) !== 0 && socket.type !== SOCK_STREAM ? received.messageLength : received.count;
}

/** Writes an unnamed peer address (length 0, as Linux reports for socketpair peers) when asked. */
function clearSourceLength(task: Task, lengthAddr: number): void {
  if (lengthAddr === 0) return;
  const requested = task.mm.copyIn(lengthAddr, 4).readInt32LE(0);
  if (requested < 0) fail(Errno.EINVAL);
  task.mm.copyOut(lengthAddr, Buffer.alloc(4));
}

function recvfrom(task: Task, fd: number, addr: number, lengthBits: number, flagsBits: number, source: number, sourceLength: number): number | Promise<number> {
  const pair = connectedSocket(task, fd);
  const flags = flagsBits | 0;
  const length = Math.min(lengthBits, MAX_TRANSFER);
  if (length < 0) fail(Errno.EFAULT);
  if (task.mm.accessibleLength(addr, length, Prot.WRITE) !== length) fail(Errno.EFAULT);
  return receiveData(task, pair, length, flags, (data, received) => {
    task.mm.copyOut(addr, data.subarray(0, received.count));
    if (source !== 0) clearSourceLength(task, sourceLength);
    return receivedCount(pair, received, flags);
  });
}

function recvmsg(task: Task, fd: number, header: number, flagsBits: number): number | Promise<number> {
  const pair = connectedSocket(task, fd);
  const flags = flagsBits | 0;
  const msg = task.mm.copyIn(header, MSGHDR.size);
  const vectors = readIoVectors(task, Number(msg.readBigUInt64LE(MSGHDR.iov)), Number(msg.readBigInt64LE(MSGHDR.iovlen)));
  return receiveData(task, pair, totalLength(vectors), flags, (data, received) => {
    scatter(task, vectors, data.subarray(0, received.count));
    const truncated = pair.type !== SOCK_STREAM && received.messageLength > received.count;
    const out = Buffer.alloc(MSGHDR.size);
    msg.copy(out);
    out.writeInt32LE(0, MSGHDR.namelen);
    out.writeBigUInt64LE(0n, MSGHDR.controllen);
    out.writeInt32LE(truncated ? MSG_TRUNC : 0, MSGHDR.flags);
    task.mm.copyOut(header, out);
    return receivedCount(pair, received, flags);
  });
}

function shutdown(task: Task, fd: number, howBits: number): number {
  const socket = socketFile(task, fd);
  const how = howBits | 0;
  if (how < 0 || how > SHUT_RDWR) fail(Errno.EINVAL);
  if (!(socket instanceof SocketPairEnd) || !socket.connected) fail(Errno.ENOTCONN);
  socket.shutdown(how);
  return 0;
}

function getsockopt(task: Task, fd: number, levelBits: number, nameBits: number, valueAddr: number, lengthAddr: number): number {
  const socket = socketFile(task, fd);
  if ((levelBits | 0) !== SOL_SOCKET) fail(Errno.EOPNOTSUPP);
  const length = task.mm.copyIn(lengthAddr, 4).readInt32LE(0);
  if (length < 0) fail(Errno.EINVAL);

  let value: number;
  switch (nameBits | 0) {
    case SO_TYPE:
      value = socket.type;
      break;
    case SO_DOMAIN:
      value = AF_UNIX;
      break;
    case SO_ERROR:
      value = socket.takeError();
      break;
    case SO_SNDBUF:
      value = socket.sendBuffer;
      break;
    case SO_RCVBUF:
      value = socket.receiveBuffer;
      break;
    default:
      return fail(Errno.ENOPROTOOPT);
  }
  const encoded = Buffer.alloc(4);
  encoded.writeInt32LE(value);
  const written = Math.min(length, 4);
  task.mm.copyOut(valueAddr, encoded.subarray(0, written));
  const lengthOut = Buffer.alloc(4);
  lengthOut.writeInt32LE(written);
  task.mm.copyOut(lengthAddr, lengthOut);
  return 0;
}

function setsockopt(task: Task, fd: number, levelBits: number, nameBits: number, valueAddr: number, lengthBits: number): number {
  const socket = socketFile(task, fd);
  if ((levelBits | 0) !== SOL_SOCKET) fail(Errno.EOPNOTSUPP);
  const name = nameBits | 0;
  if (name !== SO_SNDBUF && name !== SO_RCVBUF) fail(Errno.ENOPROTOOPT);
  if ((lengthBits | 0) < 4) fail(Errno.EINVAL);
  const value = task.mm.copyIn(valueAddr, 4).readInt32LE(0);
  if (name === SO_SNDBUF) socket.setSendBuffer(value);
  else socket.setReceiveBuffer(value);
  return 0;
}

/** Writes the address of an unnamed Unix socket: the family alone, truncated to the caller's buffer. */
function writeUnnamedAddress(task: Task, addr: number, lengthAddr: number): number {
  const length = task.mm.copyIn(lengthAddr, 4).readInt32LE(0);
  if (length < 0) fail(Errno.EINVAL);
  const family = Buffer.alloc(2);
  family.writeUInt16LE(AF_UNIX);
  task.mm.copyOut(addr, family.subarray(0, Math.min(length, 2)));
  const lengthOut = Buffer.alloc(4);
  lengthOut.writeInt32LE(2);
  task.mm.copyOut(lengthAddr, lengthOut);
  return 0;
}

function getsockname(task: Task, fd: number, addr: number, lengthAddr: number): number {
  socketFile(task, fd);
  return writeUnnamedAddress(task, addr, lengthAddr);
}

function getpeername(task: Task, fd: number, addr: number, lengthAddr: number): number {
  const socket = socketFile(task, fd);
  if (!socket.connected) fail(Errno.ENOTCONN);
  return writeUnnamedAddress(task, addr, lengthAddr);
}

registerSyscall('socket', socket, {
  args: ['int', 'flags', 'int'],
  support: 'partial',
  note: 'AF_UNIX only, and nothing in the sandbox can listen: other families fail with EAFNOSUPPORT',
});
registerSyscall('socketpair', socketpair, {
  args: ['int', 'flags', 'int', 'ptr'],
  support: 'partial',
  note: 'AF_UNIX stream, datagram and sequenced-packet pairs; no out-of-band data (MSG_OOB fails with EOPNOTSUPP)',
});
registerSyscall('connect', connect, {
  args: ['fd', 'ptr', 'int'],
  support: 'partial',
  note: 'Unix paths only: ENOENT for a missing path, ECONNREFUSED otherwise, because nothing listens',
});
registerSyscall('sendto', sendto, {
  args: ['fd', 'buffer', 'int', 'flags', 'ptr', 'int'],
  support: 'partial',
  note: 'socketpair sockets only; MSG_OOB fails with EOPNOTSUPP',
});
registerSyscall('sendmsg', sendmsg, {
  args: ['fd', 'ptr', 'flags'],
  support: 'partial',
  note: 'socketpair sockets only; control messages such as SCM_RIGHTS fail with EINVAL',
});
registerSyscall('recvfrom', recvfrom, {
  args: ['fd', 'ptr', 'int', 'flags', 'ptr', 'ptr'],
  support: 'partial',
  note: 'socketpair sockets only; MSG_OOB fails with EOPNOTSUPP and MSG_WAITALL is ignored',
});
registerSyscall('recvmsg', recvmsg, {
  args: ['fd', 'ptr', 'flags'],
  support: 'partial',
  note: 'socketpair sockets only; no control messages are received (no SCM_RIGHTS)',
});
registerSyscall('shutdown', shutdown, { args: ['fd', 'int'] });
registerSyscall('getsockopt', getsockopt, {
  args: ['fd', 'int', 'int', 'ptr', 'ptr'],
  support: 'partial',
  note: 'SOL_SOCKET SO_TYPE, SO_DOMAIN, SO_ERROR, SO_SNDBUF and SO_RCVBUF; other options fail with ENOPROTOOPT',
});
registerSyscall('setsockopt', setsockopt, {
  args: ['fd', 'int', 'int', 'ptr', 'int'],
  support: 'partial',
  note: 'SOL_SOCKET SO_SNDBUF and SO_RCVBUF; other options fail with ENOPROTOOPT',
});
registerSyscall('getsockname', getsockname, { args: ['fd', 'ptr', 'ptr'] });
registerSyscall('getpeername', getpeername, { args: ['fd', 'ptr', 'ptr'] });
