/**
 * The memory character devices (major 1): null, zero, full, random and urandom, implemented by the
 * sentry so that opening them never reaches a host device. They keep the host node's attributes,
 * so stat and `ls -l /dev` match the host.
 */
import { randomFillSync } from 'node:crypto';

import { Errno, fail } from '../errno.js';
import type { Task } from '../kernel/task.js';
import type { FileStat } from './file.js';
import { FileBase } from './file-base.js';

export type MemDeviceKind = 'null' | 'zero' | 'full' | 'random';

const MEM_MAJOR = 1;

/** Minor numbers of the memory devices (Documentation/admin-guide/devices.txt). */
const KIND_BY_MINOR = new Map<number, MemDeviceKind>([
  [3, 'null'],
  [5, 'zero'],
  [7, 'full'],
  [8, 'random'],
  [9, 'random'],
]);

/** Returns which memory device a device number is, or undefined for any other device. */
export function memDeviceKind(major: number, minor: number): MemDeviceKind | undefined {
  return major === MEM_MAJOR ? KIND_BY_MINOR.get(minor) : undefined;
}

export class MemDevice extends FileBase {
  constructor(
    private readonly kind: MemDeviceKind,
    private readonly attributes: FileStat,
    flags: number,
    path: string,
  ) {
    super(flags, path);
  }

  override reopen(flags: number): MemDevice {
    return new MemDevice(this.kind, this.attributes, flags, this.path);
  }

  stat(): FileStat {
    return this.attributes;
  }

  override read(_task: Task, dst: Uint8Array): number {
    if (this.kind === 'null') return 0;
    if (this.kind === 'random') randomFillSync(dst);
    else dst.fill(0);
    return dst.length;
  }

  override pread(task: Task, dst: Uint8Array, _offset: number): number {
    return this.read(task, dst);
  }

  override write(_task: Task, src: Uint8Array): number {
    if (this.kind === 'full') fail(Errno.ENOSPC);
    return src.length;
  }

  override pwrite(task: Task, src: Uint8Array, _offset: number): number {
    return this.write(task, src);
  }

  // Seeking a memory device always succeeds and leaves the position at 0, as on Linux.
  override seek(): number {
    return 0;
  }
}
