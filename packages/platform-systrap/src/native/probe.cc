// Whether systrap can run here. It checks the kernel interfaces one by one so that the reason is
// precise, then starts a real stub thread, which exercises everything else (memfd, CLONE_PIDFD,
// close_range, the seccomp program) and reports the step that failed.
#include "probe.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#include "address_space.h"
#include "host_error.h"
#include "timing.h"

namespace systrap {

namespace {

std::string CheckSeccompAction(uint32_t action, const char* name) {
  if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0) return "";
  const int error = errno;
  if (error == ENOSYS) return "the kernel has no seccomp system call (CONFIG_SECCOMP is off or Linux is older than 3.17)";
  if (error == EINVAL) {
    return std::string("the kernel does not support the seccomp action ") + name +
           " (CONFIG_SECCOMP_FILTER is off or Linux is older than 4.14)";
  }
  return std::string("seccomp(SECCOMP_GET_ACTION_AVAIL, ") + name + ") failed: " + HostError::ErrnoName(error);
}

}  // namespace

std::string ProbeHost() {
  if (prctl(PR_GET_SECCOMP) < 0 && errno == EINVAL) {
    return "the kernel was built without seccomp (CONFIG_SECCOMP)";
  }
  std::string reason = CheckSeccompAction(SECCOMP_RET_TRAP, "SECCOMP_RET_TRAP");
  if (!reason.empty()) return reason;
  reason = CheckSeccompAction(SECCOMP_RET_KILL_PROCESS, "SECCOMP_RET_KILL_PROCESS");
  if (!reason.empty()) return reason;

  try {
    const uint64_t ticks = TscTicksPerMicrosecond();
    StubProcess stub({10 * ticks, 10 * ticks});
    const int slot = stub.NewThread();
    stub.ExitThread(slot);
  } catch (const HostError& error) {
    return error.what();
  }
  return "";
}

}  // namespace systrap
