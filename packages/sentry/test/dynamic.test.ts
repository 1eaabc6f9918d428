/**
 * End to end: dynamically linked programs (glibc's ld.so, coreutils, perl, python3) run natively
 * and in the sandbox on every platform that can run here, and must give the same stdout and exit
 * status. Also checks /proc/self/maps from inside a program, that a 64 GiB PROT_NONE
 * reservation costs the sandbox almost no resident memory, and that fork copies only the pages
 * that are written afterwards.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Sys } from '../src/syscalls/numbers.js';
import { syscallTable } from '../src/syscalls/table.js';
import { runSandbox } from '../src/index.js';
import { assertNothingLeft, compareWithNative, recordHostBaseline, testPlatforms, writeNumbers } from './helpers/host.js';

const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C', 'TZ=UTC', 'HOME=/'];
const here = path.dirname(fileURLToPath(import.meta.url));

const HELLO_SOURCE = `
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  printf("hello from %s with %d arguments\\n", argv[0], argc);
  char *block = malloc(1 << 20);
  block[0] = 1;
  free(block);
  return argc > 1 ? atoi(argv[1]) : 0;
}
`;

/** Prints its own /proc/self/maps lines for a file mapping and a split anonymous mapping. */
const MAPS_SOURCE = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  fstat(fd, &st);
  char *file = mmap((void *)0x300000000, 8192, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 4096);
  char *anon = mmap((void *)0x200000000, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (file == MAP_FAILED || anon == MAP_FAILED) return 2;
  mprotect(anon + 4096, 4096, PROT_NONE);
  printf("file byte %d\\n", file[0]);
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[1024];
  int stack = 0;
  while (fgets(line, sizeof line, maps)) {
    unsigned long start, end, offset, inode;
    unsigned int major, minor;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &start, &end, perms, &offset, &major, &minor, &inode) != 7) return 3;
    if (start == (unsigned long)file) {
      printf("file %lx %s %lx same-inode=%d name=%s", end - start, perms, offset, inode == st.st_ino, strchr(line, '/'));
    }
    if (start >= (unsigned long)anon && end <= (unsigned long)anon + 3 * 4096) {
      printf("anon +%lx %lx %s\\n", start - (unsigned long)anon, end - start, perms);
    }
    if (strstr(line, "[stack]") != NULL) stack++;
  }
  printf("stack lines %d\\n", stack);
  return 0;
}
`;

/** Reserves 64 GiB without access, makes 10 pages writable and touches them, then waits for stdin. */
const RESERVE_SOURCE = `
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
  char *base = mmap(0, 64UL << 30, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return 2;
  for (int i = 0; i < 10; i++) {
    char *page = base + (unsigned long)i * (6UL << 30);
    if (mprotect(page, 4096, PROT_READ | PROT_WRITE) != 0) return 3;
    page[100] = (char)i;
  }
  printf("ready\\n");
  fflush(stdout);
  char byte;
  return read(0, &byte, 1) == 1 ? 0 : 4;
}
`;

/**
 * Writes 32 MiB, forks, and lets parent and child each write the first page. The child then waits
 * for a byte on stdin, so the test can count the memory file's pages while both processes live.
 */
const FORK_SOURCE = `
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
  size_t size = 32 << 20;
  char *memory = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  memset(memory, 'o', size);
  pid_t child = fork();
  if (child == 0) {
    memory[0] = 'c';
    printf("child sees %c%c\\n", memory[0], memory[4096]);
    fflush(stdout);
    char byte;
    return read(0, &byte, 1) == 1 ? 0 : 4;
  }
  memory[0] = 'p';
  int status;
  waitpid(child, &status, 0);
  printf("parent sees %c%c, child exited %d\\n", memory[0], memory[4096], WEXITSTATUS(status));
  return 0;
}
`;

const PERL_SCRIPT = 'my %h = (apple => 3, pear => 5); my $s = "id=42;name=tsvisor"; my ($id) = $s =~ /id=(\\d+)/; ' +
  'printf("%s:%d %s %05.1f\\n", $_, $h{$_}, $id, $h{$_} / 3) for sort keys %h;';

const PYTHON_MODULES = [
  'import json, hashlib, sqlite3, re',
  'print(json.dumps({"b": [1, 2], "a": None}, sort_keys=True))',
  'print(hashlib.sha256(b"tsvisor").hexdigest())',
  'db = sqlite3.connect(":memory:")',
  'db.execute("create table t(x)")',
  'db.executemany("insert into t values (?)", [(i,) for i in range(100)])',
  'print(db.execute("select sum(x), count(*) from t").fetchone())',
  'print(re.sub(r"(\\d+)", r"<\\1>", "a1b22c333"))',
].join('\n');

function prepare(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-dynamic-'));
  const sources: Array<[string, string]> = [['hello', HELLO_SOURCE], ['maps', MAPS_SOURCE], ['reserve', RESERVE_SOURCE], ['fork', FORK_SOURCE]];
  for (const [name, source] of sources) {
    fs.writeFileSync(path.join(dir, `${name}.c`), source);
    execFileSync('gcc', ['-O2', '-o', path.join(dir, name), path.join(dir, `${name}.c`)]);
  }
  writeNumbers(path.join(dir, 'numbers.txt'), 1024 * 1024);
  fs.writeFileSync(path.join(dir, 'text.txt'), 'first line\nsecond line\n'.repeat(500));

  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'a.txt'), 'alpha\n');
  fs.writeFileSync(path.join(tree, 'sub', 'b.bin'), Buffer.alloc(5000, 1));
  fs.symlinkSync('../a.txt', path.join(tree, 'sub', 'link'));
  const fixed = new Date('2024-02-03T04:05:06Z');
  for (const entry of ['a.txt', 'sub/b.bin', 'sub', '.']) fs.utimesSync(path.join(tree, entry), fixed, fixed);
  return dir;
}

const dir = prepare();
const baseline = recordHostBaseline();
const platforms = testPlatforms();

/** Sums VmRSS, in bytes, of `pid` and its descendants. */
function residentBytes(pid: number): number {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    for (const task of fs.readdirSync(`/proc/${pids[i]}/task`)) {
      const children = fs.readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8').trim();
      if (children !== '') pids.push(...children.split(' ').map(Number));
    }
  }
  let total = 0;
  for (const each of pids) {
    const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${each}/status`, 'utf8'));
    if (match !== null) total += Number(match[1]) * 1024;
  }
  return total;
}

/** Runs the reservation program in a sandbox of its own process and returns that process tree's RSS once the pages are touched. */
function reservationResidentBytes(platform: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const fixture = path.join(here, 'fixtures', 'run-program.mts');
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, platform, path.join(dir, 'reserve')], { stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    let measured: number | undefined;
    child.stdout.on('data', (data: Buffer) => {
      output += data.toString();
      if (measured === undefined && output.includes('ready')) {
        measured = residentBytes(child.pid!);
        child.stdin.end('x');
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0 || measured === undefined) reject(new Error(`the reservation program exited with ${code} after printing ${JSON.stringify(output)}`));
      else resolve(measured);
    });
  });
}

/** Bytes of host memory behind this process's memory file, from the memfd's allocated blocks. */
function memoryFileBytes(): number {
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target.startsWith('/memfd:tsvisor-memory')) return fs.statSync(`/proc/self/fd/${fd}`).blocks * 512;
  }
  throw new Error('no memory file is open');
}

/**
 * Runs the fork program with stdin on a FIFO, and returns its stdout and the memory file's size
 * once the child has written its page.
 */
async function runForkProgram(platform: string): Promise<{ stdout: string; status: number; allocated: number }> {
  const fifo = path.join(dir, `stdin-${platform}`);
  execFileSync('mkfifo', [fifo]);
  // O_RDWR, so that opening the FIFO does not wait for a writer.
  const stdin = fs.openSync(fifo, 'r+');
  const feeder = fs.openSync(fifo, 'w');
  const outputPath = path.join(dir, `fork-${platform}.out`);
  const stdout = fs.openSync(outputPath, 'w+');
  let allocated = -1;
  const poll = setInterval(() => {
    if (allocated >= 0 || !fs.readFileSync(outputPath, 'utf8').includes('child sees')) return;
    allocated = memoryFileBytes();
    fs.writeSync(feeder, 'x');
  }, 5);
  try {
    const result = await runSandbox({ argv: [path.join(dir, 'fork')], platform, stdio: [stdin, stdout, stdout] });
    return { stdout: fs.readFileSync(outputPath, 'utf8'), status: result.status, allocated };
  } finally {
    clearInterval(poll);
    for (const fd of [stdin, feeder, stdout]) fs.closeSync(fd);
    fs.rmSync(fifo);
  }
}

/** python3's sqlite3 and hashlib start threads, so those cases wait for futex to be implemented. */
const futexImplemented = syscallTable[Sys.futex]?.handler !== undefined;

const cases: Array<[string, string[], boolean?]> = [
  ['gcc hello world', [path.join(dir, 'hello'), '5']],
  ['/bin/true', ['/bin/true']],
  ['/bin/cat FILE', ['/bin/cat', 'text.txt']],
  ['/bin/ls -lR DIR', ['/bin/ls', '-lR', 'tree']],
  ['perl hash, regex and printf', ['/usr/bin/perl', '-e', PERL_SCRIPT]],
  ['python3 print', ['/usr/bin/python3', '-c', 'print(1)']],
  ['python3 json, hashlib, sqlite3, re', ['/usr/bin/python3', '-c', PYTHON_MODULES], futexImplemented],
  ['/proc/self/maps lines', [path.join(dir, 'maps'), 'numbers.txt']],
];

for (const platform of platforms) {
  const test = suite(`dynamic programs on ${platform}`);
  for (const [name, argv, enabled] of cases) {
    (enabled === false ? test.skip : test)(name, async () => {
      await compareWithNative(platform, argv, dir, ENV);
    });
  }

  test('sort -n of 1 MB piped to md5sum', async () => {
    const sorted = await compareWithNative(platform, ['/usr/bin/sort', '-n', 'numbers.txt'], dir, ENV);
    const native = execFileSync('sh', ['-c', 'sort -n numbers.txt | md5sum'], { cwd: dir, env: { LC_ALL: 'C' } }).toString();
    assert.is(`${createHash('md5').update(sorted).digest('hex')}  -\n`, native);
  });

  test('fork copies only written pages', async () => {
    const run = await runForkProgram(platform);
    assert.is(run.status, 0);
    assert.is(run.stdout, 'child sees co\nparent sees po, child exited 0\n');
    const written = 32 * 1024 * 1024;
    assert.ok(run.allocated >= written, `the memory file holds ${run.allocated} bytes, less than the ${written} written`);
    assert.ok(run.allocated < written + 8 * 1024 * 1024, `the memory file holds ${run.allocated} bytes after fork: untouched pages were copied`);
  });

  test('64 GiB reservation stays small', async () => {
    const resident = await reservationResidentBytes(platform);
    assert.ok(resident < 200 * 1024 * 1024, `the sandbox's processes use ${(resident / 1048576).toFixed(0)} MiB resident`);
  });

  test.run();
}

const cleanup = suite('after the dynamic programs');

cleanup('no stub process or memfd is left', async () => {
  await assertNothingLeft(baseline);
});

cleanup.after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

cleanup.run();
