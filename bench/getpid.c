/* Makes N getpid system calls (N from argv[1], default 100000) through syscall(2), so no libc
 * caching can skip the kernel. Used by syscall-roundtrip.mjs. */
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long count = argc > 1 ? atol(argv[1]) : 100000;
  for (long i = 0; i < count; i++) syscall(SYS_getpid);
  return 0;
}
