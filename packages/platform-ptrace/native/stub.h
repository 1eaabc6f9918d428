// Stub processes: one per address space. A stub is started from the JavaScript main thread, which
// becomes its tracer, by clone(CLONE_VM | CLONE_VFORK) + execveat of the stub program (see
// stub-image.h). Its first thread, the control thread, only ever runs system calls the tracer
// injects: mmap and munmap for mapFile/unmap, open of the sentry's files, and clone to make one
// application thread per context. Application threads are auto-attached by PTRACE_O_TRACECLONE.
//
// Everything here runs on the tracer thread; nothing is locked.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <unordered_map>
#include <vector>

namespace tsvisor_ptrace {

struct Stub {
  pid_t pid = 0;
  // Application threads cloned for contexts, still alive.
  std::vector<pid_t> threads;

  // The stub's own descriptor for each sentry descriptor it has mapped, with the identity of the
  // file it was opened for, so that a sentry descriptor number reused for another file is noticed.
  struct OpenFile {
    dev_t dev;
    ino_t ino;
    int accessMode;
    int stubFd;
  };
  std::unordered_map<int, OpenFile> files;
};

// Starts a stub and waits until its entry code has stopped. Throws SystemError.
pid_t CreateStub();

// Returns the live stub with this pid, or throws SystemError.
Stub& FindStub(pid_t pid);

// Maps `length` bytes of the sentry's descriptor `fd` at `offset` into the stub at `addr` with
// MAP_SHARED | MAP_FIXED and `prot` (PROT_* bits).
void StubMapFile(Stub& stub, uint64_t addr, int fd, uint64_t offset, uint64_t length, int prot);

void StubUnmap(Stub& stub, uint64_t addr, uint64_t length);

// Creates an application thread, stopped, and returns its thread id.
pid_t StubCloneThread(Stub& stub);

// Ends application thread `tid`, which must be in a ptrace-stop that the tracer has already
// collected with waitpid.
void StubExitThread(Stub& stub, pid_t tid);

// SIGKILLs the stub and reaps every one of its threads.
void KillStub(pid_t pid);

// Describes a wait status for error messages, such as "thread 12 was killed by signal 9".
std::string DescribeStatus(pid_t tid, int status);

// waitpid(tid, __WALL | flags), retried on EINTR. Returns the pid or 0 (WNOHANG), or -1 with errno.
pid_t WaitThread(pid_t tid, int* status, int flags);

}  // namespace tsvisor_ptrace
