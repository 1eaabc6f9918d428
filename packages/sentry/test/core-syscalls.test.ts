/**
 * Process, memory, signal and information system calls, checked from inside the sandbox. A static
 * C program makes each call and prints the result as `name=value` pairs, and each test compares
 * them with what Linux returns.
 */
import { execFileSync } from 'node:child_process';
import createDebug from 'debug';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runInSandbox } from './helpers/host.js';

const PROBE_SOURCE = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <asm/prctl.h>

int main(void) {
  printf("pid=%ld tid=%ld ppid=%ld\\n", (long)getpid(), syscall(SYS_gettid), (long)getppid());
  printf("uid=%d euid=%d gid=%d egid=%d\\n", getuid(), geteuid(), getgid(), getegid());

  struct utsname name;
  uname(&name);
  printf("sysname=%s machine=%s\\n", name.sysname, name.machine);

  int result;
  long unknown = syscall(SYS_acct, 0);
  int unknownErrno = errno;
  syscall(SYS_acct, 0);
  printf("acct=%ld acct_errno=%d\\n", unknown, unknownErrno);

  struct timespec a, b, realtime;
  clock_gettime(CLOCK_MONOTONIC, &a);
  clock_gettime(CLOCK_MONOTONIC, &b);
  clock_gettime(CLOCK_REALTIME, &realtime);
  printf("monotonic_ordered=%d realtime=%ld\\n", (b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec)), (long)realtime.tv_sec);
  result = clock_gettime(12345, &a);
  printf("bad_clock=%d bad_clock_errno=%d\\n", result, errno);

  unsigned char random[64] = {0};
  long got = getrandom(random, sizeof random, 0);
  int nonzero = 0;
  for (int i = 0; i < 64; i++) nonzero |= random[i];
  printf("getrandom=%ld nonzero=%d\\n", got, nonzero != 0);

  struct rlimit limit;
  getrlimit(RLIMIT_STACK, &limit);
  printf("stack_limit=%lu\\n", (unsigned long)limit.rlim_cur);
  limit.rlim_cur = 4096 * 1024;
  printf("setrlimit=%d\\n", setrlimit(RLIMIT_STACK, &limit));
  getrlimit(RLIMIT_STACK, &limit);
  printf("stack_limit_after=%lu\\n", (unsigned long)limit.rlim_cur);

  struct sysinfo info;
  result = sysinfo(&info);
  printf("sysinfo=%d procs=%d ram_positive=%d\\n", result, info.procs, info.totalram > 0);

  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  result = sched_getaffinity(0, sizeof cpus, &cpus);
  printf("affinity=%d cpus=%d\\n", result, CPU_COUNT(&cpus));

  unsigned long fs = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
  printf("fs_nonzero=%d\\n", fs != 0);

  char thread_name[16] = {0};
  prctl(PR_SET_NAME, "renamed-thread-name-too-long");
  prctl(PR_GET_NAME, thread_name);
  printf("name=%s\\n", thread_name);

  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, 0);
  sigprocmask(SIG_SETMASK, 0, &old);
  printf("usr1_blocked=%d\\n", sigismember(&old, SIGUSR1));

  char *map = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  strcpy(map + 4096, "moved");
  result = munmap(map + 1, 4096);
  printf("munmap_unaligned=%d munmap_errno=%d\\n", result, errno);
  printf("mprotect=%d\\n", mprotect(map, 4096, PROT_READ));
  char *moved = mremap(map + 4096, 4096, 1 << 20, MREMAP_MAYMOVE);
  printf("mremap_content=%s\\n", moved == MAP_FAILED ? "failed" : moved);
  long address = (long)mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("mmap_zero_length=%ld mmap_errno=%d\\n", address, errno);
  FILE *self = fopen("/proc/self/exe", "r");
  printf("self_open=%d\\n", self != 0);
  long count = read(fileno(self), map, 1);
  printf("read_into_read_only=%ld read_errno=%d\\n", count, errno);

  int exe = open("/proc/self/exe", O_RDONLY);
  unsigned char *image = mmap(0, 8192, PROT_READ, MAP_PRIVATE, exe, 0);
  printf("file_map_magic=%d\\n", image != MAP_FAILED && image[0] == 0x7f && image[1] == 'E' && image[2] == 'L' && image[3] == 'F');
  unsigned char *second = mmap(0, 4096, PROT_READ, MAP_PRIVATE, exe, 4096);
  printf("file_map_offset=%d\\n", second != MAP_FAILED && memcmp(second, image + 4096, 4096) == 0);
  address = (long)mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, exe, 0);
  printf("shared_writable_map=%ld shared_errno=%d\\n", address, errno);

  void *top = sbrk(0);
  printf("brk_grows=%d\\n", sbrk(1 << 20) == top && sbrk(0) == (char *)top + (1 << 20));

  return 0;
}
`;

interface Fixture {
  dir: string;
  lines: Map<string, string>;
  debugLines: string[];
}

const test = suite<Fixture>('system calls from a program', {} as Fixture);

test.before(async (fixture) => {
  fixture.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-syscalls-'));
  const source = path.join(fixture.dir, 'probe.c');
  const binary = path.join(fixture.dir, 'probe');
  fs.writeFileSync(source, PROBE_SOURCE);
  execFileSync('gcc', ['-static', '-O1', '-o', binary, source]);

  // Capture the unimplemented-call report on its debug namespace while the probe runs.
  fixture.debugLines = [];
  const previousLog = createDebug.log;
  const previousNamespaces = createDebug.disable();
  createDebug.enable('tsvisor:sentry:syscall');
  createDebug.log = (...args: unknown[]) => fixture.debugLines.push(args.map(String).join(' '));
  let output: Awaited<ReturnType<typeof runInSandbox>>;
  try {
    output = await runInSandbox([binary], fixture.dir, []);
  } finally {
    createDebug.log = previousLog;
    createDebug.disable();
    if (previousNamespaces) createDebug.enable(previousNamespaces);
  }
  assert.is(output.status, 0, `probe failed: ${output.stderr}`);

  fixture.lines = new Map();
  for (const line of output.stdout.toString().trim().split('\n')) {
    for (const pair of line.split(' ')) {
      const equals = pair.indexOf('=');
      fixture.lines.set(pair.slice(0, equals), pair.slice(equals + 1));
    }
  }
});

test.after((fixture) => {
  fs.rmSync(fixture.dir, { recursive: true, force: true });
});

test('ids of the first task', ({ lines }) => {
  assert.is(lines.get('pid'), '1');
  assert.is(lines.get('tid'), '1');
  assert.is(lines.get('ppid'), '0');
});

test('credentials are the host ids', ({ lines }) => {
  assert.is(lines.get('uid'), String(process.getuid!()));
  assert.is(lines.get('euid'), String(process.geteuid!()));
  assert.is(lines.get('gid'), String(process.getgid!()));
  assert.is(lines.get('egid'), String(process.getegid!()));
});

test('uname reports Linux x86_64', ({ lines }) => {
  assert.is(lines.get('sysname'), 'Linux');
  assert.is(lines.get('machine'), 'x86_64');
});

test('unimplemented call is ENOSYS, reported once', ({ lines, debugLines }) => {
  assert.is(lines.get('acct'), '-1');
  assert.is(lines.get('acct_errno'), '38', 'ENOSYS');
  const reports = debugLines.filter((line) => line.includes('acct'));
  assert.is(reports.length, 1, `reports: ${JSON.stringify(debugLines)}`);
  assert.match(reports[0], 'ENOSYS');
});

test('clocks', ({ lines }) => {
  assert.is(lines.get('monotonic_ordered'), '1');
  const realtime = Number(lines.get('realtime'));
  assert.ok(Math.abs(realtime - Date.now() / 1000) < 60, `realtime ${realtime}`);
  assert.is(lines.get('bad_clock'), '-1');
  assert.is(lines.get('bad_clock_errno'), '22', 'EINVAL');
});

test('getrandom fills the buffer', ({ lines }) => {
  assert.is(lines.get('getrandom'), '64');
  assert.is(lines.get('nonzero'), '1');
});

test('resource limits round-trip', ({ lines }) => {
  assert.is(lines.get('stack_limit'), String(8 * 1024 * 1024));
  assert.is(lines.get('setrlimit'), '0');
  assert.is(lines.get('stack_limit_after'), String(4 * 1024 * 1024));
});

test('sysinfo and affinity', ({ lines }) => {
  assert.is(lines.get('sysinfo'), '0');
  assert.is(lines.get('procs'), '1');
  assert.is(lines.get('ram_positive'), '1');
  assert.is(lines.get('affinity'), '0');
  assert.is(lines.get('cpus'), String(Math.min(os.availableParallelism(), 64)));
});

test('thread pointer and name', ({ lines }) => {
  assert.is(lines.get('fs_nonzero'), '1');
  assert.is(lines.get('name'), 'renamed-thread-');
});

test('signal mask is kept', ({ lines }) => {
  assert.is(lines.get('usr1_blocked'), '1');
});

test('memory calls', ({ lines }) => {
  assert.is(lines.get('munmap_unaligned'), '-1');
  assert.is(lines.get('munmap_errno'), '22', 'EINVAL');
  assert.is(lines.get('mprotect'), '0');
  assert.is(lines.get('mremap_content'), 'moved');
  assert.is(lines.get('mmap_zero_length'), '-1');
  assert.is(lines.get('mmap_errno'), '22', 'EINVAL');
  assert.is(lines.get('self_open'), '1');
  assert.is(lines.get('read_into_read_only'), '-1');
  assert.is(lines.get('read_errno'), '14', 'EFAULT');
  assert.is(lines.get('brk_grows'), '1');
});

test('file mappings', ({ lines }) => {
  assert.is(lines.get('file_map_magic'), '1');
  assert.is(lines.get('file_map_offset'), '1');
  assert.is(lines.get('shared_writable_map'), '-1');
  assert.is(lines.get('shared_errno'), '13', 'EACCES');
});

test.run();
