// Stub processes: start-up, control requests, descriptor passing and thread creation.
//
// The control thread executes one system call per request (see stub.cc). Requests come only
// from the JavaScript main thread, so the request and reply pages need no lock on this side.
#include "address_space.h"

#include <fcntl.h>
#include <poll.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "filter.h"
#include "futex.h"
#include "host_error.h"
#include "stub.h"
#include "timing.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace systrap {

namespace {

// How long a control request or a thread start may take before the stub is declared hung.
constexpr uint64_t kControlTimeoutUs = 5000000;
// How long a vanished stub thread's process gets to report its own death, in milliseconds.
constexpr int kProcessExitGraceMs = 100;
// How long one futex sleep lasts before the waiter checks whether the stub still lives.
constexpr long kLivenessCheckNs = 20000000;

// rseq(2) unregistration, with the signature glibc registers on x86-64.
constexpr int kRseqFlagUnregister = 1;
constexpr uint32_t kRseqSignature = 0x53053053;

struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

// Exit statuses the stub uses when a start-up step fails, and what each step was.
const char* StartStepName(int status) {
  switch (status) {
    case 10: return "the sentry exited while the stub started";
    case 11: return "dup of the stub's descriptors failed";
    case 12: return "close_range failed (Linux 5.9 or later is required)";
    case 13: return "mmap of the temporary stub code failed";
    case 14: return "mprotect of the temporary stub code failed";
    case 15: return "rseq unregistration failed";
    case 16: return "setsid failed";
    case 20:
    case 21: return "munmap of the inherited address space failed";
    case 22: return "mmap of the stub code failed";
    case 23: return "mprotect of the stub code failed";
    case 24: return "mmap of the shared region failed";
    case 25: return "mmap of the control stack failed";
    case 26: return "rt_sigaction of a trapped signal failed";
    case 27: return "prctl(PR_SET_NO_NEW_PRIVS) failed";
    case 28: return "seccomp(SECCOMP_SET_MODE_FILTER) failed; seccomp filters are unavailable or forbidden";
    case 29: return "sigaltstack in a new stub thread failed";
    case 30: return "seccomp(SECCOMP_SET_MODE_FILTER) of a new stub thread failed";
    case 31: return "mprotect of the stub's request page failed";
    default: return nullptr;
  }
}

[[noreturn]] void ExitChild(int status) {
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}

// Runs in the forked child, where only the calling thread exists; it makes raw system calls only.
[[noreturn]] void StubChildMain(int memfd, int socket, pid_t parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) ExitChild(10);
  // A session of its own keeps the terminal's signals, such as Ctrl-C's SIGINT and Ctrl-Z's
  // SIGTSTP, away from the stub: the sentry alone decides what the application receives.
  if (setsid() < 0) ExitChild(16);

  KernelSigaction default_action = {nullptr, 0, nullptr, 0};  // SIG_DFL is 0.
  for (int signo = 1; signo <= 64; signo++) {
    if (signo == SIGKILL || signo == SIGSTOP) continue;
    syscall(SYS_rt_sigaction, signo, &default_action, nullptr, 8);
  }
  uint64_t empty_mask = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty_mask, nullptr, 8);
  stack_t no_altstack = {nullptr, SS_DISABLE, 0};
  sigaltstack(&no_altstack, nullptr);

  // glibc registered a restartable-sequence area in this thread's TLS, which stage 2 unmaps. The
  // kernel would then kill the stub with SIGSEGV the next time it updates the area.
  if (__rseq_size > 0) {
    void* area = static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset;
    if (syscall(SYS_rseq, area, __rseq_size, kRseqFlagUnregister, kRseqSignature) != 0 &&
        syscall(SYS_rseq, area, 32, kRseqFlagUnregister, kRseqSignature) != 0) {
      ExitChild(15);
    }
  }

  const int high_memfd = fcntl(memfd, F_DUPFD, 64);
  const int high_socket = fcntl(socket, F_DUPFD, 64);
  if (high_memfd < 0 || high_socket < 0) ExitChild(11);
  if (dup2(high_memfd, STUB_SHARED_FD) < 0 || dup2(high_socket, STUB_SOCKET_FD) < 0) ExitChild(11);
  if (syscall(SYS_close_range, 0, STUB_SHARED_FD - 1, 0) != 0) ExitChild(12);
  if (syscall(SYS_close_range, STUB_SOCKET_FD + 1, ~0u, 0) != 0) ExitChild(12);

  void* code = mmap(nullptr, STUB_CODE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (code == MAP_FAILED) ExitChild(13);
  memcpy(code, tsvisor_systrap_stub_start, StubCodeLength());
  if (mprotect(code, STUB_CODE_SIZE, PROT_READ | PROT_EXEC) != 0) ExitChild(14);

  const char* stage2 = static_cast<const char*>(code) + StubStage2Offset();
  asm volatile("jmp *%1" : : "D"(code), "r"(stage2) : "memory");
  __builtin_unreachable();
}

}  // namespace

StubProcess::StubProcess(const StubOptions& options) : options_(options), slot_used_(STUB_MAX_THREADS, false) {
  static_assert(STUB_CODE_ADDRESS % SLOT_SIZE == 0 && STUB_SHARED_ADDRESS % SLOT_SIZE == 0, "slot alignment");
  if (StubCodeLength() > STUB_CODE_SIZE) throw HostError("the stub code is larger than STUB_CODE_SIZE");

  memfd_ = static_cast<int>(syscall(SYS_memfd_create, "tsvisor-systrap-stub", MFD_CLOEXEC));
  if (memfd_ < 0) throw HostError("memfd_create", errno);
  if (ftruncate(memfd_, STUB_SHARED_SIZE) != 0) {
    const int error = errno;
    close(memfd_);
    throw HostError("ftruncate of the stub's shared region", error);
  }
  void* shared = mmap(nullptr, STUB_SHARED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0);
  if (shared == MAP_FAILED) {
    const int error = errno;
    close(memfd_);
    throw HostError("mmap of the stub's shared region", error);
  }
  shared_ = static_cast<uint8_t*>(shared);

  try {
    StoreProgram(HDR_FPROG_PROCESS, HDR_FILTER_PROCESS, BuildProcessFilter());
    StoreProgram(HDR_FPROG_THREAD, HDR_FILTER_THREAD, BuildThreadFilter());
  } catch (const std::exception& error) {
    munmap(shared_, STUB_SHARED_SIZE);
    close(memfd_);
    throw HostError(std::string("systrap: building the stub's seccomp programs failed: ") + error.what());
  }
  // The stub reports start-up by storing sequence number 0 here.
  DoneSequence()->store(~0u);
  *reinterpret_cast<uint64_t*>(shared_ + HDR_SPIN_TICKS) = options_.stub_spin_ticks;
  *reinterpret_cast<uint64_t*>(shared_ + HDR_HAS_FSGSBASE) = (getauxval(AT_HWCAP2) & 2) != 0 ? 1 : 0;

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    const int error = errno;
    munmap(shared_, STUB_SHARED_SIZE);
    close(memfd_);
    throw HostError("socketpair", error);
  }
  socket_ = pair[0];

  const pid_t parent = getpid();
  int pidfd = -1;
  const long pid = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, nullptr, &pidfd, nullptr, 0);
  if (pid == 0) StubChildMain(memfd_, pair[1], parent);
  const int clone_error = errno;
  close(pair[1]);
  if (pid < 0) {
    close(socket_);
    munmap(shared_, STUB_SHARED_SIZE);
    close(memfd_);
    throw HostError("clone of the stub process", clone_error);
  }
  pid_ = static_cast<pid_t>(pid);
  pidfd_ = pidfd;

  try {
    WaitForControl(0, "start-up");
  } catch (...) {
    Kill();
    munmap(shared_, STUB_SHARED_SIZE);
    close(memfd_);
    throw;
  }
}

StubProcess::~StubProcess() {
  Kill();
  if (shared_ != nullptr) munmap(shared_, STUB_SHARED_SIZE);
  if (memfd_ >= 0) close(memfd_);
}

std::string StubProcess::DescribeStartFailure(int status) {
  const char* step = StartStepName(status);
  if (step != nullptr) return std::string("stub start-up failed: ") + step;
  return "stub process exited with status " + std::to_string(status);
}

std::string StubProcess::ExitReason() {
  std::lock_guard<std::mutex> lock(exit_mutex_);
  if (!exit_reason_.empty()) return exit_reason_;
  if (killed_) return "stub process was killed by the sentry";

  siginfo_t info;
  std::memset(&info, 0, sizeof(info));
  if (waitid(static_cast<idtype_t>(P_PIDFD), pidfd_, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) {
    return "";
  }
  const std::string stub = "stub process " + std::to_string(pid_);
  if (info.si_code == CLD_EXITED) {
    exit_reason_ = DescribeStartFailure(info.si_status);
  } else if (info.si_status == SIGKILL) {
    // The sentry's own SIGKILL sets killed_ first, so this one came from outside the sandbox
    // (the OOM killer, or a user).
    exit_reason_ = stub + " was killed by signal KILL from outside the sandbox";
  } else {
    // Nothing but application code can make the stub fault or break its seccomp program: the
    // stub's own code never does either once it has started.
    exit_reason_ = std::string(kStubDestroyed) + " (" + stub + " was killed by signal " + sigabbrev_np(info.si_status);
    if (info.si_status == SIGSYS) exit_reason_ += " after a system call from the stub's code that its seccomp program rejects";
    exit_reason_ += ")";
  }
  return exit_reason_;
}

std::string StubProcess::ThreadExitReason(int slot) {
  std::string reason = ExitReason();
  if (!reason.empty()) return reason;

  // CLONE_CHILD_CLEARTID zeroes this word when the thread exits. The stub ends a thread only
  // when the sentry sets SLOT_EXIT, so a thread that ended otherwise jumped to the stub's exit.
  if (SlotWord(slot, SLOT_CLEAR_TID)->load(std::memory_order_acquire) == 0) {
    // When the whole stub dies, its threads go before the process becomes waitable, so give the
    // process a moment to report how it died, which is the better explanation.
    int pidfd = -1;
    {
      std::lock_guard<std::mutex> lock(exit_mutex_);
      if (!killed_ && pidfd_ >= 0) pidfd = dup(pidfd_);
    }
    if (pidfd >= 0) {
      pollfd exited = {pidfd, POLLIN, 0};
      poll(&exited, 1, kProcessExitGraceMs);
      close(pidfd);
      reason = ExitReason();
      if (!reason.empty()) return reason;
    }
    return std::string(kStubDestroyed) + " (its thread in slot " + std::to_string(slot) + " of stub process " +
           std::to_string(pid_) + " exited)";
  }
  return "";
}

void StubProcess::Kill() {
  {
    std::lock_guard<std::mutex> lock(exit_mutex_);
    if (killed_ || pidfd_ < 0) return;
    killed_ = true;
    syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
    siginfo_t info;
    while (waitid(static_cast<idtype_t>(P_PIDFD), pidfd_, &info, WEXITED) != 0 && errno == EINTR) {
    }
    close(pidfd_);
    pidfd_ = -1;
    close(socket_);
    socket_ = -1;
  }
  WakeAllWaiters();
}

void StubProcess::WakeAllWaiters() {
  FutexWake(DoneSequence());
  for (int slot = 0; slot < STUB_MAX_THREADS; slot++) {
    if (slot_used_[slot]) FutexWake(SlotWord(slot, SLOT_STATE));
  }
}

void StubProcess::StoreProgram(size_t fprog_offset, size_t filter_offset, const std::vector<sock_filter>& filter) {
  std::memcpy(shared_ + filter_offset, filter.data(), filter.size() * sizeof(sock_filter));
  auto* program = reinterpret_cast<sock_fprog*>(shared_ + fprog_offset);
  program->len = static_cast<unsigned short>(filter.size());
  program->filter = reinterpret_cast<sock_filter*>(STUB_SHARED_ADDRESS + filter_offset);
}

void StubProcess::WaitForControl(uint32_t sequence, const char* what) {
  auto* done = DoneSequence();
  auto* sleeping = reinterpret_cast<std::atomic<uint32_t>*>(shared_ + HDR_CTRL_SENTRY_SLEEPING);

  const uint64_t start = ReadTsc();
  while (done->load(std::memory_order_acquire) != sequence) {
    if (ReadTsc() - start > options_.sentry_spin_ticks) break;
    __builtin_ia32_pause();
  }

  const uint64_t deadline = start + kControlTimeoutUs * TscTicksPerMicrosecond();
  sleeping->exchange(1);
  for (uint32_t current = done->load(std::memory_order_acquire); current != sequence;
       current = done->load(std::memory_order_acquire)) {
    const std::string reason = ExitReason();
    if (!reason.empty()) {
      sleeping->store(0);
      throw HostError(std::string("systrap ") + what + ": " + reason);
    }
    if (ReadTsc() > deadline) {
      sleeping->store(0);
      throw HostError(std::string("systrap ") + what + ": the stub process did not respond within 5 seconds (timed out)");
    }
    FutexWait(done, current, kLivenessCheckNs);
  }
  sleeping->store(0);
}

long StubProcess::Request(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
  if (killed_) throw HostError("systrap: the address space was released");
  auto* args = reinterpret_cast<uint64_t*>(shared_ + HDR_REQ_ARGS);
  *reinterpret_cast<uint64_t*>(shared_ + HDR_REQ_NR) = static_cast<uint64_t>(nr);
  args[0] = a0;
  args[1] = a1;
  args[2] = a2;
  args[3] = a3;
  args[4] = a4;
  args[5] = a5;

  auto* request = reinterpret_cast<std::atomic<uint32_t>*>(shared_ + HDR_REQ_SEQ);
  auto* stub_sleeping = reinterpret_cast<std::atomic<uint32_t>*>(shared_ + HDR_CTRL_STUB_SLEEPING);
  const uint32_t sequence = ++request_sequence_;
  request->exchange(sequence);
  if (stub_sleeping->load() != 0) FutexWake(request);

  WaitForControl(sequence, "control request");
  return static_cast<long>(*reinterpret_cast<uint64_t*>(shared_ + HDR_REQ_RESULT));
}

int StubProcess::StubDescriptorFor(int fd) {
  struct stat info;
  if (fstat(fd, &info) != 0) throw HostError("fstat of the file to map", errno);

  auto cached = descriptors_.find(fd);
  if (cached != descriptors_.end()) {
    if (cached->second.dev == info.st_dev && cached->second.ino == info.st_ino) return cached->second.stub_fd;
    // The sentry closed that descriptor and reused its number for another file.
    Request(SYS_close, cached->second.stub_fd, 0, 0, 0, 0, 0);
    descriptors_.erase(cached);
  }

  char byte = 0;
  iovec iov = {&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  std::memset(control, 0, sizeof(control));
  msghdr message = {};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
  if (sendmsg(socket_, &message, MSG_NOSIGNAL) != 1) throw HostError("sendmsg of a descriptor to the stub", errno);

  // The stub receives into buffers in the reply page, at the addresses it has there.
  auto* stub_message = reinterpret_cast<msghdr*>(shared_ + HDR_MSGHDR);
  auto* stub_iov = reinterpret_cast<iovec*>(shared_ + HDR_IOVEC);
  std::memset(stub_message, 0, sizeof(msghdr));
  std::memset(shared_ + HDR_CMSG, 0, HDR_CMSG_SIZE);
  stub_iov->iov_base = reinterpret_cast<void*>(STUB_SHARED_ADDRESS + HDR_IOBYTE);
  stub_iov->iov_len = 1;
  stub_message->msg_iov = reinterpret_cast<iovec*>(STUB_SHARED_ADDRESS + HDR_IOVEC);
  stub_message->msg_iovlen = 1;
  stub_message->msg_control = reinterpret_cast<void*>(STUB_SHARED_ADDRESS + HDR_CMSG);
  stub_message->msg_controllen = HDR_CMSG_SIZE;
  const long received = Request(SYS_recvmsg, STUB_SOCKET_FD, STUB_SHARED_ADDRESS + HDR_MSGHDR, 0, 0, 0, 0);
  if (received < 0) throw HostError("recvmsg in the stub", static_cast<int>(-received));

  auto* stub_header = reinterpret_cast<cmsghdr*>(shared_ + HDR_CMSG);
  if (stub_header->cmsg_level != SOL_SOCKET || stub_header->cmsg_type != SCM_RIGHTS) {
    throw HostError("systrap: the stub received no descriptor");
  }
  int stub_fd;
  std::memcpy(&stub_fd, shared_ + HDR_CMSG + CMSG_LEN(0), sizeof(int));
  descriptors_[fd] = {info.st_dev, info.st_ino, stub_fd};
  return stub_fd;
}

void StubProcess::MapFile(uint64_t addr, int fd, uint64_t offset, uint64_t length, int prot) {
  const int stub_fd = StubDescriptorFor(fd);
  const long result = Request(SYS_mmap, addr, length, static_cast<uint64_t>(prot), MAP_SHARED | MAP_FIXED,
                              static_cast<uint64_t>(stub_fd), offset);
  if (result < 0 && result > -4096) throw HostError("mmap in the stub", static_cast<int>(-result));
  if (static_cast<uint64_t>(result) != addr) throw HostError("systrap: mmap in the stub returned another address");
}

void StubProcess::Unmap(uint64_t addr, uint64_t length) {
  const long result = Request(SYS_munmap, addr, length, 0, 0, 0, 0);
  if (result != 0) throw HostError("munmap in the stub", static_cast<int>(-result));
}

pid_t StubProcess::ThreadId(int slot) const {
  return static_cast<pid_t>(*reinterpret_cast<const uint32_t*>(SlotBase(slot) + SLOT_TID));
}

uint8_t* StubProcess::TranslateInSlot(int slot, uint64_t stub_address, size_t length) const {
  const uint64_t slot_start = STUB_SHARED_ADDRESS + SLOT_FIRST_OFFSET + static_cast<uint64_t>(slot) * SLOT_SIZE;
  if (stub_address < slot_start + SLOT_ALTSTACK || stub_address > slot_start + SLOT_SIZE ||
      length > slot_start + SLOT_SIZE - stub_address) {
    return nullptr;
  }
  return shared_ + (stub_address - STUB_SHARED_ADDRESS);
}

int StubProcess::NewThread() {
  int slot = 0;
  while (slot < STUB_MAX_THREADS && slot_used_[slot]) slot++;
  if (slot == STUB_MAX_THREADS) {
    throw HostError("systrap: too many threads; an address space can have at most " + std::to_string(STUB_MAX_THREADS) + " threads");
  }
  std::memset(SlotBase(slot), 0, 0x40);

  const uint64_t stub_slot = STUB_SHARED_ADDRESS + SLOT_FIRST_OFFSET + static_cast<uint64_t>(slot) * SLOT_SIZE;
  const uint64_t flags = StubThreadCloneFlags();
  const long tid = Request(SYS_clone, flags, stub_slot + SLOT_ALTSTACK, stub_slot + SLOT_TID,
                           stub_slot + SLOT_CLEAR_TID, 0, 0);
  if (tid < 0) throw HostError("clone in the stub", static_cast<int>(-tid));
  slot_used_[slot] = true;

  // The new thread's first act is int3; wait until its handler reports it.
  auto* state = SlotWord(slot, SLOT_STATE);
  auto* sleeping = SlotWord(slot, SLOT_SENTRY_SLEEPING);
  const uint64_t deadline = ReadTsc() + kControlTimeoutUs * TscTicksPerMicrosecond();
  sleeping->exchange(1);
  while (state->load(std::memory_order_acquire) != SLOT_EVENT) {
    const std::string reason = ExitReason();
    if (!reason.empty() || ReadTsc() > deadline) {
      slot_used_[slot] = false;
      throw HostError("systrap: a new stub thread did not start: " +
                      (reason.empty() ? std::string("no response within 5 seconds (timed out)") : reason));
    }
    FutexWait(state, SLOT_RUNNING, kLivenessCheckNs);
  }
  sleeping->store(0);
  return slot;
}

void StubProcess::ExitThread(int slot) {
  if (slot < 0 || slot >= STUB_MAX_THREADS || !slot_used_[slot]) return;
  if (!killed_ && ExitReason().empty() && SlotWord(slot, SLOT_CLEAR_TID)->load() != 0) {
    auto* state = SlotWord(slot, SLOT_STATE);
    const uint64_t deadline = ReadTsc() + kControlTimeoutUs * TscTicksPerMicrosecond();

    // A thread still running application code must first trap into its handler, because the
    // handler overwrites the state word when it starts.
    if (state->load() != SLOT_EVENT) {
      syscall(SYS_tgkill, pid_, ThreadId(slot), STUB_INTERRUPT_SIGNAL);
      while (state->load() != SLOT_EVENT) {
        if (ReadTsc() > deadline || !ExitReason().empty()) return;
        FutexWait(state, state->load(), kLivenessCheckNs / 20);
      }
    }
    state->exchange(SLOT_EXIT);
    if (SlotWord(slot, SLOT_STUB_SLEEPING)->load() != 0) FutexWake(state);

    // CLONE_CHILD_CLEARTID zeroes this word and wakes it when the thread is gone.
    auto* clear_tid = SlotWord(slot, SLOT_CLEAR_TID);
    for (uint32_t tid = clear_tid->load(); tid != 0; tid = clear_tid->load()) {
      if (ReadTsc() > deadline || !ExitReason().empty()) {
        // The slot's stack may still be in use: never hand it out again.
        return;
      }
      FutexWait(clear_tid, tid, kLivenessCheckNs);
    }
  }
  slot_used_[slot] = false;
}

}  // namespace systrap
