/** ioctl: the requests every descriptor accepts, then the file's own (terminal queries, ...). */
import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { isRegular, O_NONBLOCK, SEEK_CUR } from '../vfs/flags.js';
import { registerSyscall } from './table.js';

/** Generic requests from <asm-generic/ioctls.h>, which Linux handles before passing others to the file. */
const FIONCLEX = 0x5450;
const FIOCLEX = 0x5451;
const FIONBIO = 0x5421;
const FIONREAD = 0x541b;

function ioctl(task: Task, fdBits: number, request: number, arg: number): number | Promise<number> {
  const fd = fdBits | 0;
  const file = task.fdTable.get(fd);
  // The request is an unsigned int in the kernel, whatever the upper bits of the register hold.
  const command = request >>> 0;
  switch (command) {
    case FIOCLEX:
      task.fdTable.setCloexec(fd, true);
      return 0;
    case FIONCLEX:
      task.fdTable.setCloexec(fd, false);
      return 0;
    case FIONBIO: {
      const value = task.mm.copyIn(arg, 4).readInt32LE(0);
      file.flags = value !== 0 ? file.flags | O_NONBLOCK : file.flags & ~O_NONBLOCK;
      return 0;
    }
    case FIONREAD: {
      // Linux handles FIONREAD on regular files itself: it returns the bytes between offset and end.
      const stat = file.stat();
      if (!isRegular(stat.mode)) return file.ioctl(task, command, arg);
      const available = Buffer.alloc(4);
      available.writeInt32LE(Math.min(Math.max(stat.size - file.seek(0, SEEK_CUR), 0), 0x7fffffff));
      task.mm.copyOut(arg, available);
      return 0;
    }
    default:
      if (arg < 0) fail(Errno.EFAULT);
      return file.ioctl(task, command, arg);
  }
}

registerSyscall('ioctl', ioctl, {
  args: ['fd', 'hex', 'ptr'],
  support: 'partial',
  note: 'FIOCLEX, FIONCLEX, FIONBIO, FIONREAD; on terminals TCGETS, TCSETS*, TCGETA, TCSETA*, TCSBRK (drains, sends no break), TCXONC, TCFLSH, TIOCOUTQ, TIOCGWINSZ, TIOCSWINSZ, TIOCGPGRP, TIOCSPGRP, TIOCGSID, TIOCSCTTY and TIOCNOTTY with job control; other requests fail with ENOTTY',
});
