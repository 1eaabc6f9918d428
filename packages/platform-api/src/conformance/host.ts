/** Host-side helpers of the conformance suite: a scratch file to map, and a census of host resources. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * A temporary file on tmpfs (or the system temporary directory) that snippets are written into and
 * mapped from. It is unlinked as soon as it is opened, so nothing is left even if the test dies.
 */
export class ScratchFile {
  readonly fd: number;

  constructor(readonly size: number) {
    const dir = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
    const file = path.join(dir, `tsvisor-conformance-${process.pid}-${randomBytes(6).toString('hex')}`);
    this.fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    fs.unlinkSync(file);
    fs.ftruncateSync(this.fd, size);
  }

  /** Writes byte sequences one after another starting at `offset`. */
  write(offset: number, ...chunks: number[][]): void {
    const bytes = Buffer.from(chunks.flat());
    fs.writeSync(this.fd, bytes, 0, bytes.length, offset);
  }

  writeU64(offset: number, value: bigint): void {
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64LE(value);
    fs.writeSync(this.fd, bytes, 0, 8, offset);
  }

  readU64(offset: number): bigint {
    const bytes = Buffer.alloc(8);
    fs.readSync(this.fd, bytes, 0, 8, offset);
    return bytes.readBigUInt64LE();
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

export interface HostResources {
  /** Pids of every live (non-zombie) descendant process of this process, sorted. */
  readonly descendants: number[];
  readonly threads: number;
  readonly fds: number;
}

function parentOf(pid: number): { ppid: number; state: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], ppid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

/** Counts what this process owns on the host: descendant processes, its threads, its descriptors. */
export function hostResources(): HostResources {
  const parents = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = parentOf(Number(entry));
    if (info !== undefined && info.state !== 'Z') parents.set(Number(entry), info.ppid);
  }
  const descendants: number[] = [];
  for (const pid of parents.keys()) {
    let cursor = parents.get(pid);
    while (cursor !== undefined && cursor > 1) {
      if (cursor === process.pid) {
        descendants.push(pid);
        break;
      }
      cursor = parents.get(cursor);
    }
  }
  descendants.sort((a, b) => a - b);
  return {
    descendants,
    threads: fs.readdirSync('/proc/self/task').length,
    fds: fs.readdirSync('/proc/self/fd').length - 1,
  };
}
