/**
 * Extended attributes: the sandbox's file systems behave like Linux file systems without xattr
 * support. getxattr and setxattr fail with EOPNOTSUPP, listxattr returns an empty list, after the
 * same path, descriptor and name checks Linux makes first.
 */
import { Errno, fail, SysError } from '../errno.js';
import type { Task } from '../kernel/task.js';
import { AT_FDCWD } from '../vfs/flags.js';
import { readPath } from '../vfs/user-path.js';
import { registerSyscall } from './table.js';

/** Maximum attribute name length Linux accepts (XATTR_NAME_MAX), without the NUL. */
const XATTR_NAME_MAX = 255;

/** setxattr flags from <linux/xattr.h>. */
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;

/** Resolves the path, as Linux does before it calls the file system, so a missing file is ENOENT. */
function lookUp(task: Task, pathAddr: number, follow: boolean): void {
  task.kernel.vfs.stat(task.fs, AT_FDCWD, readPath(task, pathAddr), follow, task);
}

/** Reads an attribute name; an empty or overlong name is ERANGE, as in Linux. */
function checkName(task: Task, nameAddr: number): void {
  let name: string;
  try {
    name = task.mm.readCString(nameAddr, XATTR_NAME_MAX + 1);
  } catch (error) {
    if (error instanceof SysError && error.errno === Errno.ENAMETOOLONG) fail(Errno.ERANGE);
    throw error;
  }
  if (name.length === 0) fail(Errno.ERANGE);
}

function getAttribute(task: Task, nameAddr: number): number {
  checkName(task, nameAddr);
  return fail(Errno.EOPNOTSUPP);
}

function setAttribute(task: Task, nameAddr: number, flagBits: number): number {
  if (((flagBits | 0) & ~(XATTR_CREATE | XATTR_REPLACE)) !== 0) fail(Errno.EINVAL);
  checkName(task, nameAddr);
  return fail(Errno.EOPNOTSUPP);
}

function pathGet(follow: boolean) {
  return (task: Task, pathAddr: number, nameAddr: number): number => {
    lookUp(task, pathAddr, follow);
    return getAttribute(task, nameAddr);
  };
}

function pathList(follow: boolean) {
  return (task: Task, pathAddr: number): number => {
    lookUp(task, pathAddr, follow);
    return 0;
  };
}

function pathSet(follow: boolean) {
  return (task: Task, pathAddr: number, nameAddr: number, _value: number, _size: number, flags: number): number => {
    lookUp(task, pathAddr, follow);
    return setAttribute(task, nameAddr, flags);
  };
}

function pathRemove(follow: boolean) {
  return (task: Task, pathAddr: number, nameAddr: number): number => {
    lookUp(task, pathAddr, follow);
    return getAttribute(task, nameAddr);
  };
}

const note = 'no file system supports extended attributes: reads and writes fail with EOPNOTSUPP, lists are empty';

registerSyscall('getxattr', pathGet(true), { args: ['path', 'string', 'ptr', 'int'], note });
registerSyscall('lgetxattr', pathGet(false), { args: ['path', 'string', 'ptr', 'int'], note });
registerSyscall('fgetxattr', (task, fd, nameAddr) => {
  task.fdTable.get(fd);
  return getAttribute(task, nameAddr);
}, { args: ['fd', 'string', 'ptr', 'int'], note });

registerSyscall('listxattr', pathList(true), { args: ['path', 'ptr', 'int'], note });
registerSyscall('llistxattr', pathList(false), { args: ['path', 'ptr', 'int'], note });
registerSyscall('flistxattr', (task, fd) => {
  task.fdTable.get(fd);
  return 0;
}, { args: ['fd', 'ptr', 'int'], note });

registerSyscall('setxattr', pathSet(true), { args: ['path', 'string', 'ptr', 'int', 'flags'], note });
registerSyscall('lsetxattr', pathSet(false), { args: ['path', 'string', 'ptr', 'int', 'flags'], note });
registerSyscall('fsetxattr', (task, fd, nameAddr, _value, _size, flags) => {
  task.fdTable.get(fd);
  return setAttribute(task, nameAddr, flags);
}, { args: ['fd', 'string', 'ptr', 'int', 'flags'], note });

registerSyscall('removexattr', pathRemove(true), { args: ['path', 'string'], note });
registerSyscall('lremovexattr', pathRemove(false), { args: ['path', 'string'], note });
registerSyscall('fremovexattr', (task, fd, nameAddr) => {
  task.fdTable.get(fd);
  return getAttribute(task, nameAddr);
}, { args: ['fd', 'string'], note });
