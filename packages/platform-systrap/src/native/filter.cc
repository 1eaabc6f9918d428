// The seccomp program of a stub process. A system call made from the stub's code region with a
// number the stub itself uses is allowed. One made from that region with any other number kills
// the stub, because only application code that jumped into the stub can make it. Every other
// system call, including the 32-bit (int 0x80) and x32 entry points, raises SIGSYS in the calling
// thread (SECCOMP_RET_TRAP), which the stub's handler passes to the sentry.
//
// NOTE: application code can still jump to a syscall instruction of the stub with an allowed
// number (mmap of a descriptor the stub holds, for example). That reaches nothing outside the
// sandbox but lets an application map pages of the memory file the sentry did not give it.
#include "filter.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/syscall.h>

#include "layout.h"

namespace systrap {

namespace {

sock_filter Statement(unsigned short code, unsigned int k) { return BPF_STMT(code, k); }

sock_filter Jump(unsigned short code, unsigned int k, unsigned char jt, unsigned char jf) {
  return BPF_JUMP(code, k, jt, jf);
}

const int kStubSyscalls[] = {
    SYS_rt_sigreturn, SYS_futex, SYS_mmap,      SYS_munmap, SYS_recvmsg,    SYS_close,
    SYS_clone,        SYS_exit,  SYS_exit_group, SYS_sigaltstack, SYS_arch_prctl, SYS_sched_yield,
};

}  // namespace

std::vector<sock_filter> BuildStubFilter() {
  const unsigned long long code_start = STUB_CODE_ADDRESS;
  const unsigned long long code_end = STUB_CODE_ADDRESS + STUB_CODE_SIZE;
  const unsigned int count = sizeof(kStubSyscalls) / sizeof(kStubSyscalls[0]);

  // Jump offsets count instructions after the jump. The program ends with: kill, allow, trap.
  std::vector<sock_filter> program;
  const unsigned int body = 7 + 1 + count;
  auto to_trap = [&](unsigned int index) { return static_cast<unsigned char>(body + 2 - index - 1); };

  program.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  program.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, to_trap(1)));
  program.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, instruction_pointer) + 4));
  program.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned int>(code_start >> 32), 0, to_trap(3)));
  program.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, instruction_pointer)));
  program.push_back(Jump(BPF_JMP | BPF_JGE | BPF_K, static_cast<unsigned int>(code_start), 0, to_trap(5)));
  program.push_back(Jump(BPF_JMP | BPF_JGE | BPF_K, static_cast<unsigned int>(code_end), to_trap(6), 0));
  program.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  for (unsigned int i = 0; i < count; i++) {
    const unsigned int index = 8 + i;
    const unsigned char to_allow = static_cast<unsigned char>(body + 1 - index - 1);
    program.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, kStubSyscalls[i], to_allow, 0));
  }
  program.push_back(Statement(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  program.push_back(Statement(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  program.push_back(Statement(BPF_RET | BPF_K, SECCOMP_RET_TRAP));
  return program;
}

}  // namespace systrap
