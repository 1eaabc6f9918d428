/** pipe and pipe2: a new pipe whose read end and write end become two descriptors. */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { O_CLOEXEC, O_DIRECT, O_NONBLOCK } from '../vfs/flags.js';
import { PipeEnd } from '../vfs/pipe.js';
import { registerSyscall } from './table.js';

function pipe2(task: Task, addr: number, flags: number): number {
  flags |= 0;
  if ((flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT)) !== 0) fail(Errno.EINVAL);
  // NOTE: O_DIRECT (packet mode) is accepted but the pipe stays a byte stream.
  const [readEnd, writeEnd] = PipeEnd.create(flags);
  const cloexec = (flags & O_CLOEXEC) !== 0;
  const table = task.fdTable;

  let readFd: number;
  try {
    readFd = table.install(readEnd, cloexec);
  } catch (error) {
    readEnd.decRef();
    writeEnd.decRef();
    throw error;
  }
  let writeFd: number;
  try {
    writeFd = table.install(writeEnd, cloexec);
  } catch (error) {
    table.close(readFd);
    writeEnd.decRef();
    throw error;
  }

  const fds = Buffer.alloc(8);
  fds.writeInt32LE(readFd, 0);
  fds.writeInt32LE(writeFd, 4);
  try {
    task.mm.copyOut(addr, fds);
  } catch (error) {
    table.close(readFd);
    table.close(writeFd);
    throw error;
  }
  return 0;
}

registerSyscall('pipe', (task, addr) => pipe2(task, addr, 0), { args: ['ptr'] });
registerSyscall('pipe2', pipe2, {
  args: ['ptr', 'flags'],
  support: 'partial',
  note: 'O_DIRECT is accepted but the pipe is not in packet mode',
});
