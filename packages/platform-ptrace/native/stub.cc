#include "stub.h"

#include <elf.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "error.h"
#include "stub-image.h"

namespace tsvisor_ptrace {

namespace {

std::unordered_map<pid_t, Stub>& Stubs() {
  static std::unordered_map<pid_t, Stub> stubs;
  return stubs;
}

// Arguments of the stub child and the failure it reports back, in memory it shares with the
// tracer until execveat.
struct ChildStart {
  pid_t parent;
  int imageFd;
  const char* volatile failedCall;
  volatile int failedErrno;
};

void ChildFail(ChildStart* start, const char* call) {
  start->failedErrno = errno;
  start->failedCall = call;
  _exit(127);
}

// Runs in the child between clone and execveat, on its own stack but in the tracer's memory, so
// it makes raw system calls only.
int StubChildMain(void* arg) {
  auto* start = static_cast<ChildStart*>(arg);

  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(start, "prctl(PR_SET_PDEATHSIG)");
  if (getppid() != start->parent) _exit(127);

  // A session of its own keeps terminal signals such as Ctrl-C's SIGINT away from the stub; the
  // sentry alone decides what the application receives.
  if (setsid() < 0) ChildFail(start, "setsid");

  // Marks every inherited descriptor close-on-exec rather than closing it, because execveat needs
  // the image descriptor; the stub program then starts with no descriptor at all.
  if (syscall(SYS_close_range, 0, ~0U, CLOSE_RANGE_CLOEXEC) != 0) ChildFail(start, "close_range");

  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) ChildFail(start, "ptrace(PTRACE_TRACEME)");

  char* const argv[] = {nullptr};
  char* const envp[] = {nullptr};
  syscall(SYS_execveat, start->imageFd, "", argv, envp, AT_EMPTY_PATH);
  ChildFail(start, "execveat of the stub program");
  return 127;
}

int CreateImageFile() {
  // MFD_EXEC (Linux 6.3) is required where vm.memfd_noexec is 1; older kernels reject the flag.
  // NOTE: vm.memfd_noexec = 2 forbids executable memfds, so no stub can start there; probe()
  // then reports the failing call.
  int fd = static_cast<int>(syscall(SYS_memfd_create, "tsvisor-ptrace-stub", MFD_CLOEXEC | 0x0010U));
  if (fd < 0 && errno == EINVAL) fd = static_cast<int>(syscall(SYS_memfd_create, "tsvisor-ptrace-stub", MFD_CLOEXEC));
  if (fd < 0) throw SystemError("memfd_create for the stub program", errno);

  std::vector<uint8_t> image = BuildStubImage();
  ssize_t written = pwrite(fd, image.data(), image.size(), 0);
  if (written != static_cast<ssize_t>(image.size())) {
    int err = written < 0 ? errno : EIO;
    close(fd);
    throw SystemError("write of the stub program", err);
  }
  return fd;
}

}  // namespace

std::string DescribeStatus(pid_t tid, int status) {
  if (WIFEXITED(status)) return "thread " + std::to_string(tid) + " exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "thread " + std::to_string(tid) + " was killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFSTOPPED(status)) {
    return "thread " + std::to_string(tid) + " stopped with signal " + std::to_string(WSTOPSIG(status)) +
           " and ptrace event " + std::to_string(status >> 16);
  }
  return "thread " + std::to_string(tid) + " reported wait status " + std::to_string(status);
}

namespace {

// Waits for the next stop of a stub's control thread and requires it to be SIGTRAP.
void ExpectTrap(pid_t pid, const char* when) {
  int status = 0;
  if (WaitThread(pid, &status, 0) < 0) throw SystemError(std::string("waitpid for the stub ") + when, errno);
  if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP || (status >> 16) != 0) {
    throw SystemError("stub process " + std::to_string(pid) + " did not stop " + when + ": " + DescribeStatus(pid, status));
  }
}

void ReapAfterKill(pid_t tid) {
  int status = 0;
  for (;;) {
    pid_t r = WaitThread(tid, &status, 0);
    if (r < 0) return;  // ECHILD: already reaped.
    if (WIFEXITED(status) || WIFSIGNALED(status)) return;
  }
}

pid_t StartStub() {
  int imageFd = CreateImageFile();

  constexpr size_t kChildStackSize = 64 * 1024;
  std::unique_ptr<char[]> childStack(new char[kChildStackSize]);
  ChildStart start{getpid(), imageFd, nullptr, 0};

  // Signals stay blocked in the child until the stub program's entry code unblocks them, so that
  // no handler of this process runs on memory the child shares with it.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  pid_t pid = clone(StubChildMain, childStack.get() + kChildStackSize, CLONE_VM | CLONE_VFORK | SIGCHLD, &start);
  int cloneErrno = errno;
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  close(imageFd);

  if (pid < 0) throw SystemError("clone of a stub process", cloneErrno);
  if (start.failedCall != nullptr) {
    ReapAfterKill(pid);
    throw SystemError(std::string(start.failedCall) + " in a new stub process", start.failedErrno);
  }
  return pid;
}

void SetRegs(pid_t tid, const user_regs_struct& regs) {
  if (ptrace(PTRACE_SETREGS, tid, nullptr, &regs) != 0) {
    throw SystemError("PTRACE_SETREGS of stub thread " + std::to_string(tid), errno);
  }
}

void GetRegs(pid_t tid, user_regs_struct& regs) {
  if (ptrace(PTRACE_GETREGS, tid, nullptr, &regs) != 0) {
    throw SystemError("PTRACE_GETREGS of stub thread " + std::to_string(tid), errno);
  }
}

void Continue(pid_t tid) {
  if (ptrace(PTRACE_CONT, tid, nullptr, nullptr) != 0) {
    throw SystemError("PTRACE_CONT of stub thread " + std::to_string(tid), errno);
  }
}

user_regs_struct GadgetRegs(long nr, std::initializer_list<uint64_t> args) {
  user_regs_struct regs{};
  regs.rip = kGadgetAddress;
  regs.rax = static_cast<uint64_t>(nr);
  regs.orig_rax = ~0ULL;
  regs.cs = 0x33;
  regs.ss = 0x2b;
  regs.eflags = 0x202;
  unsigned long long* slots[] = {&regs.rdi, &regs.rsi, &regs.rdx, &regs.r10, &regs.r8, &regs.r9};
  size_t i = 0;
  for (uint64_t arg : args) *slots[i++] = arg;
  return regs;
}

// Runs one system call in the stub's control thread and returns its raw result (-errno on
// failure). Host signals that reach the control thread are suppressed. With `clonedTid`, a
// PTRACE_EVENT_CLONE stop on the way stores the new thread's id there.
int64_t Inject(Stub& stub, long nr, std::initializer_list<uint64_t> args, pid_t* clonedTid = nullptr) {
  user_regs_struct regs = GadgetRegs(nr, args);
  SetRegs(stub.pid, regs);
  Continue(stub.pid);

  for (;;) {
    int status = 0;
    if (WaitThread(stub.pid, &status, 0) < 0) throw SystemError("waitpid for stub " + std::to_string(stub.pid), errno);
    if (!WIFSTOPPED(status)) throw SystemError("stub process " + std::to_string(stub.pid) + " died: " + DescribeStatus(stub.pid, status));

    int event = status >> 16;
    if (event == PTRACE_EVENT_CLONE && clonedTid != nullptr) {
      unsigned long message = 0;
      if (ptrace(PTRACE_GETEVENTMSG, stub.pid, nullptr, &message) != 0) {
        throw SystemError("PTRACE_GETEVENTMSG of stub " + std::to_string(stub.pid), errno);
      }
      *clonedTid = static_cast<pid_t>(message);
      Continue(stub.pid);
      continue;
    }

    if (WSTOPSIG(status) == SIGTRAP && event == 0) {
      GetRegs(stub.pid, regs);
      if (regs.rip == kGadgetTrapRip) return static_cast<int64_t>(regs.rax);
    }
    Continue(stub.pid);
  }
}

void PokeString(Stub& stub, uint64_t addr, const std::string& text) {
  std::string padded = text;
  padded.resize((text.size() / 8 + 1) * 8, '\0');
  for (size_t i = 0; i < padded.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, padded.data() + i, 8);
    if (ptrace(PTRACE_POKEDATA, stub.pid, addr + i, word) != 0) {
      throw SystemError("PTRACE_POKEDATA of stub " + std::to_string(stub.pid), errno);
    }
  }
}

void CheckResult(int64_t result, const std::string& call) {
  if (result < 0 && result >= -4095) throw SystemError(call, static_cast<int>(-result));
}

// Returns the stub's descriptor for the sentry's descriptor `fd`, opening it through
// /proc/<sentry>/fd on first use. /proc reopening needs only PTRACE_MODE_READ access to the
// sentry, which Yama's ptrace_scope does not restrict, unlike pidfd_getfd.
int StubFileDescriptor(Stub& stub, int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) throw SystemError("fstat of descriptor " + std::to_string(fd), errno);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) throw SystemError("fcntl(F_GETFL) of descriptor " + std::to_string(fd), errno);
  int accessMode = flags & O_ACCMODE;

  auto found = stub.files.find(fd);
  if (found != stub.files.end()) {
    const Stub::OpenFile& open = found->second;
    if (open.dev == st.st_dev && open.ino == st.st_ino && open.accessMode == accessMode) return open.stubFd;
    Inject(stub, SYS_close, {static_cast<uint64_t>(open.stubFd)});
    stub.files.erase(found);
  }

  std::string path = "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(fd);
  PokeString(stub, kScratchAddress, path);
  int64_t stubFd = Inject(stub, SYS_openat, {static_cast<uint64_t>(AT_FDCWD), kScratchAddress,
                                             static_cast<uint64_t>(accessMode | O_CLOEXEC), 0});
  CheckResult(stubFd, "open of " + path + " in stub " + std::to_string(stub.pid));
  stub.files[fd] = Stub::OpenFile{st.st_dev, st.st_ino, accessMode, static_cast<int>(stubFd)};
  return static_cast<int>(stubFd);
}

}  // namespace

pid_t WaitThread(pid_t tid, int* status, int flags) {
  for (;;) {
    pid_t r = waitpid(tid, status, __WALL | flags);
    if (r >= 0 || errno != EINTR) return r;
  }
}

pid_t CreateStub() {
  pid_t pid = StartStub();

  try {
    ExpectTrap(pid, "after execveat");
    long options = PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE;
    if (ptrace(PTRACE_SETOPTIONS, pid, nullptr, options) != 0) {
      throw SystemError("PTRACE_SETOPTIONS of stub " + std::to_string(pid), errno);
    }
    Continue(pid);
    ExpectTrap(pid, "at the end of its entry code");

    user_regs_struct regs{};
    GetRegs(pid, regs);
    if (regs.rip != EntryTrapRip()) {
      throw SystemError("stub process " + std::to_string(pid) + " stopped at an unexpected address");
    }
    CheckResult(static_cast<int64_t>(regs.r12), "rt_sigprocmask in the stub program");
    CheckResult(static_cast<int64_t>(regs.r13), "munmap below the stub program");
    CheckResult(static_cast<int64_t>(regs.r14), "munmap above the stub program");
  } catch (...) {
    kill(pid, SIGKILL);
    ReapAfterKill(pid);
    throw;
  }

  Stub& stub = Stubs()[pid];
  stub.pid = pid;
  return pid;
}

Stub& FindStub(pid_t pid) {
  auto found = Stubs().find(pid);
  if (found == Stubs().end()) throw SystemError("no live stub process " + std::to_string(pid) + " (released already?)");
  return found->second;
}

void StubMapFile(Stub& stub, uint64_t addr, int fd, uint64_t offset, uint64_t length, int prot) {
  int stubFd = StubFileDescriptor(stub, fd);
  int64_t result = Inject(stub, SYS_mmap, {addr, length, static_cast<uint64_t>(prot),
                                           static_cast<uint64_t>(MAP_SHARED | MAP_FIXED),
                                           static_cast<uint64_t>(stubFd), offset});
  CheckResult(result, "mmap in stub " + std::to_string(stub.pid));
  if (static_cast<uint64_t>(result) != addr) throw SystemError("mmap in stub " + std::to_string(stub.pid) + " returned another address");
}

void StubUnmap(Stub& stub, uint64_t addr, uint64_t length) {
  CheckResult(Inject(stub, SYS_munmap, {addr, length}), "munmap in stub " + std::to_string(stub.pid));
}

pid_t StubCloneThread(Stub& stub) {
  constexpr uint64_t kFlags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
  pid_t eventTid = 0;
  int64_t result = Inject(stub, SYS_clone, {kFlags, 0, 0, 0, 0}, &eventTid);
  CheckResult(result, "clone in stub " + std::to_string(stub.pid));
  pid_t tid = static_cast<pid_t>(result);

  // The new thread is attached with a SIGSTOP pending; collect that first stop.
  int status = 0;
  if (WaitThread(tid, &status, 0) < 0) throw SystemError("waitpid for new stub thread " + std::to_string(tid), errno);
  if (!WIFSTOPPED(status)) throw SystemError("new stub thread did not stop: " + DescribeStatus(tid, status));
  stub.threads.push_back(tid);
  return tid;
}

void StubExitThread(Stub& stub, pid_t tid) {
  auto found = std::find(stub.threads.begin(), stub.threads.end(), tid);
  if (found == stub.threads.end()) return;
  stub.threads.erase(found);

  user_regs_struct regs = GadgetRegs(SYS_exit, {0});
  if (ptrace(PTRACE_SETREGS, tid, nullptr, &regs) != 0) {
    // ESRCH: the thread has died already (its stub was killed); only reaping is left.
    if (errno != ESRCH) throw SystemError("PTRACE_SETREGS of stub thread " + std::to_string(tid), errno);
    ReapAfterKill(tid);
    return;
  }
  Continue(tid);
  for (;;) {
    int status = 0;
    if (WaitThread(tid, &status, 0) < 0) return;
    if (WIFEXITED(status) || WIFSIGNALED(status)) return;
    // A stale interrupt: suppress its SIGSTOP and let the thread reach exit.
    Continue(tid);
  }
}

void KillStub(pid_t pid) {
  auto found = Stubs().find(pid);
  if (found == Stubs().end()) return;
  std::vector<pid_t> threads = std::move(found->second.threads);
  Stubs().erase(found);

  kill(pid, SIGKILL);
  for (pid_t tid : threads) ReapAfterKill(tid);
  ReapAfterKill(pid);
}

}  // namespace tsvisor_ptrace
