// The seccomp programs of a stub process.
//
// Every system call of application code raises SIGSYS in the calling thread (SECCOMP_RET_TRAP),
// which the stub's handler passes to the sentry. That includes the 32-bit (int 0x80) and x32
// entry points, which arrive with another architecture or number and which the sentry must not
// run as x86-64 calls.
//
// The stub's own system calls are allowed only from the exact instruction that makes each of
// them (seccomp sees the address after the syscall instruction), only with that instruction's
// system call number, and with its arguments pinned wherever the stub uses a constant. Any other
// system call made from the stub's pages kills the whole stub (SECCOMP_RET_KILL_PROCESS), because
// only application code that jumped into the stub can make one.
//
// Two programs stack. The process program, installed at start-up, covers the control thread's
// calls (mmap, munmap, recvmsg, close, clone with the exact thread flags). Each application
// thread installs the thread program before it runs any application code. The thread program
// allows only what the signal handler and the thread's exit use, so application threads can make
// none of the control thread's calls: no clone, mmap, munmap, mprotect, recvmsg, kill or exec of
// any kind, from any address. Seccomp applies the stricter result of both programs.
//
// NOTE: application code can still read the stub's code and jump to an allowed instruction with
// its own registers. The thread program lets it make only these calls: arch_prctl with the fs/gs
// operations, futex wait and wake, sched_yield, rt_sigreturn (a forged signal frame can change the
// thread's registers, signal mask and alternate signal stack) and exit of its own thread. None of
// them creates a process or thread, maps memory or reaches a descriptor, so a program that does
// this can only stall or kill its own stub, which the sentry reports as the program's doing.
#include "filter.h"

#include <linux/audit.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <cstdint>
#include <stdexcept>

#include "layout.h"
#include "stub.h"

namespace systrap {

namespace {

constexpr uint32_t kArchPrctlSetGs = 0x1001;
constexpr uint32_t kArchPrctlSetFs = 0x1002;
constexpr uint32_t kArchPrctlGetFs = 0x1003;
constexpr uint32_t kArchPrctlGetGs = 0x1004;
constexpr uint32_t kFutexWait = 0;
constexpr uint32_t kFutexWake = 1;

// How a system call argument is checked.
enum class ArgTest {
  // The whole 64-bit value equals `value`.
  kEqual,
  // The value is below `value`, whose low 32 bits must be zero.
  kBelow,
  // The value is at most `value`, which fits in 32 bits.
  kAtMost,
};

struct ArgCheck {
  int index;
  ArgTest test;
  uint64_t value;
};

// One system call number a site may make, with the argument checks it must pass.
struct Allowed {
  int nr;
  std::vector<ArgCheck> args;
};

struct Site {
  const char* label;
  std::vector<Allowed> calls;
};

unsigned int ArgLow(int index) { return offsetof(seccomp_data, args) + 8 * index; }
unsigned int ArgHigh(int index) { return ArgLow(index) + 4; }

unsigned char Skip(size_t count) {
  if (count > 255) throw std::length_error("a seccomp jump of the stub's filter is longer than 255 instructions");
  return static_cast<unsigned char>(count);
}

void Load(std::vector<sock_filter>& out, unsigned int offset) {
  out.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset));
}

void Return(std::vector<sock_filter>& out, unsigned int action) { out.push_back(BPF_STMT(BPF_RET | BPF_K, action)); }

// Emits the checks of `call` followed by "allow" and "kill"; every failed check jumps to "kill".
std::vector<sock_filter> CallBody(const Allowed& call) {
  std::vector<sock_filter> body;
  // Conditional jumps whose false branch must reach the final "kill", patched once it is placed.
  std::vector<size_t> to_kill_if_false;
  std::vector<size_t> to_kill_if_true;

  for (const ArgCheck& check : call.args) {
    const uint32_t low = static_cast<uint32_t>(check.value);
    const uint32_t high = static_cast<uint32_t>(check.value >> 32);
    switch (check.test) {
      case ArgTest::kEqual:
        Load(body, ArgLow(check.index));
        to_kill_if_false.push_back(body.size());
        body.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, low, 0, 0));
        Load(body, ArgHigh(check.index));
        to_kill_if_false.push_back(body.size());
        body.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, high, 0, 0));
        break;
      case ArgTest::kBelow:
        if (low != 0) throw std::invalid_argument("kBelow takes a bound whose low 32 bits are zero");
        Load(body, ArgHigh(check.index));
        to_kill_if_true.push_back(body.size());
        body.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, high, 0, 0));
        break;
      case ArgTest::kAtMost:
        if (high != 0) throw std::invalid_argument("kAtMost takes a bound that fits in 32 bits");
        Load(body, ArgHigh(check.index));
        to_kill_if_false.push_back(body.size());
        body.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0));
        Load(body, ArgLow(check.index));
        to_kill_if_true.push_back(body.size());
        body.push_back(BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, low, 0, 0));
        break;
    }
  }
  Return(body, SECCOMP_RET_ALLOW);
  const size_t kill = body.size();
  Return(body, SECCOMP_RET_KILL_PROCESS);

  for (size_t at : to_kill_if_false) body[at].jf = Skip(kill - at - 1);
  for (size_t at : to_kill_if_true) body[at].jt = Skip(kill - at - 1);
  return body;
}

// The program: architecture check, then one block per site, each entered only when the
// instruction pointer is that site's.
std::vector<sock_filter> Build(const std::vector<Site>& sites) {
  std::vector<sock_filter> program;

  Load(program, offsetof(seccomp_data, arch));
  program.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  Return(program, SECCOMP_RET_TRAP);

  // Application code lies below STUB_MAX_USER_ADDRESS, so the high half of its addresses is
  // never that of the stub's pages.
  Load(program, offsetof(seccomp_data, instruction_pointer) + 4);
  program.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(STUB_CODE_ADDRESS >> 32), 1, 0));
  Return(program, SECCOMP_RET_TRAP);

  for (const Site& site : sites) {
    std::vector<sock_filter> block;
    Load(block, offsetof(seccomp_data, nr));
    for (const Allowed& call : site.calls) {
      std::vector<sock_filter> body = CallBody(call);
      block.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(call.nr), 0, Skip(body.size())));
      block.insert(block.end(), body.begin(), body.end());
    }
    Return(block, SECCOMP_RET_KILL_PROCESS);

    Load(program, offsetof(seccomp_data, instruction_pointer));
    const uint32_t address = static_cast<uint32_t>(StubSiteAddress(site.label));
    program.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, address, 0, Skip(block.size())));
    program.insert(program.end(), block.begin(), block.end());
  }

  Return(program, SECCOMP_RET_KILL_PROCESS);
  if (program.size() > HDR_FILTER_MAX_INSNS) throw std::length_error("the stub's seccomp program is too long");
  return program;
}

// What the signal handler and a thread's exit use; both programs allow these.
std::vector<Site> ThreadSites() {
  return {
      {tsvisor_systrap_site_get_fs, {{SYS_arch_prctl, {{0, ArgTest::kEqual, kArchPrctlGetFs}}}}},
      {tsvisor_systrap_site_get_gs, {{SYS_arch_prctl, {{0, ArgTest::kEqual, kArchPrctlGetGs}}}}},
      {tsvisor_systrap_site_set_fs, {{SYS_arch_prctl, {{0, ArgTest::kEqual, kArchPrctlSetFs}}}}},
      {tsvisor_systrap_site_set_gs, {{SYS_arch_prctl, {{0, ArgTest::kEqual, kArchPrctlSetGs}}}}},
      {tsvisor_systrap_site_event_wake, {{SYS_futex, {{1, ArgTest::kEqual, kFutexWake}}}}},
      {tsvisor_systrap_site_event_wait, {{SYS_futex, {{1, ArgTest::kEqual, kFutexWait}, {3, ArgTest::kEqual, 0}}}}},
      {tsvisor_systrap_site_event_yield, {{SYS_sched_yield, {}}}},
      {tsvisor_systrap_site_sigreturn, {{SYS_rt_sigreturn, {}}}},
      {tsvisor_systrap_site_thread_exit, {{SYS_exit, {}}}},
  };
}

}  // namespace

// The exact flags of the control thread's clone: a thread of the stub, never a process.
constexpr uint64_t kStubThreadCloneFlags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                                           CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID |
                                           CLONE_CHILD_CLEARTID;

uint64_t StubThreadCloneFlags() { return kStubThreadCloneFlags; }

std::vector<sock_filter> BuildProcessFilter() {
  std::vector<Site> sites = ThreadSites();
  const uint64_t max_user = STUB_MAX_USER_ADDRESS;

  sites.push_back({tsvisor_systrap_site_altstack, {{SYS_sigaltstack, {{1, ArgTest::kEqual, 0}}}}});
  sites.push_back({tsvisor_systrap_site_thread_filter,
                   {{SYS_seccomp,
                     {{0, ArgTest::kEqual, SECCOMP_SET_MODE_FILTER},
                      {1, ArgTest::kEqual, 0},
                      {2, ArgTest::kEqual, STUB_SHARED_ADDRESS + HDR_FPROG_THREAD}}}}});
  sites.push_back({tsvisor_systrap_site_fail, {{SYS_exit_group, {}}}});
  sites.push_back({tsvisor_systrap_site_ctrl_yield, {{SYS_sched_yield, {}}}});
  sites.push_back({tsvisor_systrap_site_ctrl_wait, {{SYS_futex, {{1, ArgTest::kEqual, kFutexWait}, {3, ArgTest::kEqual, 0}}}}});
  sites.push_back({tsvisor_systrap_site_ctrl_wake, {{SYS_futex, {{1, ArgTest::kEqual, kFutexWake}}}}});
  sites.push_back({tsvisor_systrap_site_ctrl_request,
                   {
                       {SYS_mmap,
                        {{0, ArgTest::kBelow, max_user},
                         {2, ArgTest::kAtMost, PROT_READ | PROT_WRITE | PROT_EXEC},
                         {3, ArgTest::kEqual, MAP_SHARED | MAP_FIXED},
                         {4, ArgTest::kAtMost, 0x7fffffff}}},
                       {SYS_munmap, {{0, ArgTest::kBelow, max_user}}},
                       {SYS_recvmsg, {{0, ArgTest::kEqual, STUB_SOCKET_FD}, {2, ArgTest::kEqual, 0}}},
                       {SYS_close, {{0, ArgTest::kAtMost, 0x7fffffff}}},
                       {SYS_clone, {{0, ArgTest::kEqual, kStubThreadCloneFlags}}},
                   }});
  return Build(sites);
}

std::vector<sock_filter> BuildThreadFilter() { return Build(ThreadSites()); }

}  // namespace systrap
