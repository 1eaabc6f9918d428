/**
 * The smaller calls dynamic programs make, checked from inside a C program in the sandbox. They
 * cover xattrs (as on a file system without them), the nscd socket probe, umask, getpriority,
 * fadvise64, mincore, the mlock family, MAP_GROWSDOWN, FIONREAD, and TIOCGPGRP on a terminal.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runInSandbox, testPlatforms } from './helpers/host.js';

const here = path.dirname(fileURLToPath(import.meta.url));

const PROGRAM_SOURCE = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

static void report(const char *name, long result) {
  printf("%s = %ld%s%s\\n", name, result, result < 0 ? " " : "", result < 0 ? strerrorname_np(errno) : "");
}

int main(int argc, char **argv) {
  char value[64];
  report("getxattr", getxattr(argv[1], "user.test", value, sizeof value));
  report("lgetxattr missing", lgetxattr("/nonexistent", "user.test", value, sizeof value));
  report("listxattr", listxattr(argv[1], value, sizeof value));
  report("setxattr", setxattr(argv[1], "user.test", "x", 1, 0));

  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  strcpy(address.sun_path, "/nonexistent/socket");
  report("connect missing", connect(sock, (struct sockaddr *)&address, sizeof address));
  strcpy(address.sun_path, argv[1]);
  report("connect regular file", connect(sock, (struct sockaddr *)&address, sizeof address));
  close(sock);
  report("socket inet", socket(AF_INET, SOCK_STREAM, 0));

  report("umask first", umask(077));
  report("umask second", umask(022));
  errno = 0;
  report("getpriority", getpriority(PRIO_PROCESS, 0));

  int fd = open(argv[1], O_RDONLY);
  report("fadvise", posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL));
  report("fadvise invalid", posix_fadvise(fd, 0, 0, 99));
  char buffer[100];
  read(fd, buffer, sizeof buffer);
  int available = -1;
  report("FIONREAD file", ioctl(fd, FIONREAD, &available));
  printf("available %d\\n", available);

  size_t size = 64 << 20;
  unsigned char *region = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  region[5 * 4096] = 1;
  unsigned char resident[8];
  report("mincore", mincore(region, sizeof resident * 4096, resident));
  printf("resident %d%d%d%d%d%d%d%d\\n", resident[0], resident[1], resident[2], resident[3], resident[4], resident[5], resident[6], resident[7]);
  report("mlock", mlock(region + 4096, 4096));
  report("mincore after mlock", mincore(region, 4096 * 2, resident));
  printf("resident %d%d\\n", resident[0], resident[1]);
  report("munlock", munlock(region + 4096, 4096));
  report("mlockall", mlockall(MCL_CURRENT));
  report("munlockall", munlockall());
  munmap(region + size - 4096, 4096);
  report("mincore unmapped", mincore(region + size - 4096, 4096, resident));

  /* Placed where nothing is mapped below, so the stack guard gap leaves room to grow. */
  char *down = mmap((void *)0x400000000, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE, -1, 0);
  down[-3 * 4096] = 7;
  printf("grew %d\\n", down[-3 * 4096]);
  return 0;
}
`;

const EXPECTED = `getxattr = -1 EOPNOTSUPP
lgetxattr missing = -1 ENOENT
listxattr = 0
setxattr = -1 EOPNOTSUPP
connect missing = -1 ENOENT
connect regular file = -1 ECONNREFUSED
socket inet = -1 EAFNOSUPPORT
umask first = 18
umask second = 63
getpriority = 0
fadvise = 0
fadvise invalid = 22
FIONREAD file = 0
available 900
mincore = 0
resident 00000100
mlock = 0
mincore after mlock = 0
resident 01
munlock = 0
mlockall = 0
munlockall = 0
mincore unmapped = -1 ENOMEM
grew 7
`;

const TERMINAL_SOURCE = `
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>
int main(void) {
  pid_t group = -1;
  int available = -1;
  int got = ioctl(0, TIOCGPGRP, &group);
  int queued = ioctl(0, FIONREAD, &available);
  printf("TIOCGPGRP %d group %d FIONREAD %d available %d getpgrp %d\\n", got, group, queued, available, getpgrp());
  return 0;
}
`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-misc-'));
for (const [name, source] of [['program', PROGRAM_SOURCE], ['terminal', TERMINAL_SOURCE]]) {
  fs.writeFileSync(path.join(dir, `${name}.c`), source);
  execFileSync('gcc', ['-O1', '-o', path.join(dir, name), path.join(dir, `${name}.c`)]);
}
fs.writeFileSync(path.join(dir, 'data.txt'), 'x'.repeat(1000));

for (const platform of testPlatforms()) {
  const test = suite(`small system calls on ${platform}`);

  test('results seen by the program', async () => {
    const run = await runInSandbox([path.join(dir, 'program'), path.join(dir, 'data.txt')], dir, [], { platform });
    assert.is(run.status, 0, run.stderr);
    assert.fixture(run.stdout.toString(), EXPECTED);
  });

  test('terminal process group and FIONREAD', () => {
    const fixture = path.join(here, 'fixtures', 'run-program.mts');
    const command = `${process.execPath} --import tsx ${fixture} ${platform} ${path.join(dir, 'terminal')}`;
    // script(1) gives the sandbox a pseudo-terminal as stdin, stdout and stderr.
    const run = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', cwd: here });
    assert.is(run.status, 0, run.stdout);
    assert.match(run.stdout, /TIOCGPGRP 0 group (\d+) FIONREAD 0 available 0 getpgrp \1\r?\n/);
  });

  test.run();
}

const cleanup = suite('after the small system calls');
cleanup('remove the programs', () => {
  fs.rmSync(dir, { recursive: true, force: true });
  assert.not.ok(fs.existsSync(dir));
});
cleanup.run();
