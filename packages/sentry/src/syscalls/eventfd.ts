/** eventfd and eventfd2: a new eventfd counter as a descriptor. */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { EFD_SEMAPHORE, EventFd } from '../vfs/eventfd.js';
import { O_CLOEXEC, O_NONBLOCK } from '../vfs/flags.js';
import { registerSyscall } from './table.js';

/** EFD_CLOEXEC and EFD_NONBLOCK have the values of O_CLOEXEC and O_NONBLOCK, as in <sys/eventfd.h>. */
const EFD_FLAGS = O_CLOEXEC | O_NONBLOCK | EFD_SEMAPHORE;

function eventfd2(task: Task, initial: number, flags: number): number {
  flags |= 0;
  if ((flags & ~EFD_FLAGS) !== 0) fail(Errno.EINVAL);
  const file = new EventFd(initial, flags, (flags & EFD_SEMAPHORE) !== 0);
  try {
    return task.fdTable.install(file, (flags & O_CLOEXEC) !== 0);
  } catch (error) {
    file.decRef();
    throw error;
  }
}

registerSyscall('eventfd', (task, initial) => eventfd2(task, initial, 0), { args: ['int'] });
registerSyscall('eventfd2', eventfd2, { args: ['int', 'flags'] });
