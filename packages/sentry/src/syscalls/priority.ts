/**
 * getpriority: every task runs at nice 0, since setpriority is not implemented and the sentry
 * schedules tasks itself. The raw system call returns 20 - nice, so 20 here; libc converts it back.
 */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { registerSyscall, registerUnimplemented } from './table.js';

const PRIO_PROCESS = 0;
const PRIO_PGRP = 1;
const PRIO_USER = 2;

const NICE_ZERO_RESULT = 20;

function getpriority(task: Task, whichBits: number, whoBits: number): number {
  const which = whichBits | 0;
  const who = whoBits | 0;
  const kernel = task.kernel;
  switch (which) {
    case PRIO_PROCESS:
      if (who !== 0 && !kernel.tasks.has(who)) fail(Errno.ESRCH);
      return NICE_ZERO_RESULT;
    case PRIO_PGRP:
      if (who !== 0 && kernel.processGroup(who).length === 0) fail(Errno.ESRCH);
      return NICE_ZERO_RESULT;
    case PRIO_USER:
      if (who !== 0 && who !== task.creds.uid) fail(Errno.ESRCH);
      return NICE_ZERO_RESULT;
    default:
      return fail(Errno.EINVAL);
  }
}

registerSyscall('getpriority', getpriority, { args: ['int', 'int'] });
registerUnimplemented('setpriority', 'nice values are not kept: every task runs at nice 0');
