/**
 * socket and connect for Unix domain sockets. Nothing in the sandbox listens yet, so connect
 * reports what Linux reports for a socket path without a listener: ENOENT when the path does not
 * exist, ECONNREFUSED when it does. Other address families are not supported (no network).
 */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { AT_FDCWD, O_NONBLOCK } from '../vfs/flags.js';
import { UnixSocket } from '../vfs/unix-socket.js';
import { registerSyscall } from './table.js';

const AF_UNIX = 1;

const SOCK_STREAM = 1;
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
  const type = typeAndFlags & SOCK_TYPE_MASK;
  if ((typeAndFlags & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC)) !== 0) fail(Errno.EINVAL);
  if (domain !== AF_UNIX) fail(Errno.EAFNOSUPPORT);
  if (type !== SOCK_STREAM && type !== SOCK_DGRAM && type !== SOCK_SEQPACKET) fail(Errno.ESOCKTNOSUPPORT);
  if (protocol !== 0 && protocol !== AF_UNIX) fail(Errno.EPROTONOSUPPORT);

  const flags = (typeAndFlags & SOCK_NONBLOCK) !== 0 ? O_NONBLOCK : 0;
  const file = new UnixSocket(type, flags, task.creds.euid, task.creds.egid);
  try {
    return task.fdTable.install(file, (typeAndFlags & SOCK_CLOEXEC) !== 0);
  } catch (error) {
    file.decRef();
    throw error;
  }
}

function connect(task: Task, fd: number, addr: number, lengthBits: number): number {
  const file = task.fdTable.get(fd);
  if (!(file instanceof UnixSocket)) fail(Errno.ENOTSOCK);
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

registerSyscall('socket', socket, {
  args: ['int', 'flags', 'int'],
  support: 'partial',
  note: 'AF_UNIX only, and nothing in the sandbox can listen: other families fail with EAFNOSUPPORT',
});
registerSyscall('connect', connect, {
  args: ['fd', 'ptr', 'int'],
  support: 'partial',
  note: 'Unix paths only: ENOENT for a missing path, ECONNREFUSED otherwise, because nothing listens',
});
