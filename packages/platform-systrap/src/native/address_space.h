// A stub process: one host address space for application code, driven through shared memory.
#ifndef TSVISOR_SYSTRAP_ADDRESS_SPACE_H
#define TSVISOR_SYSTRAP_ADDRESS_SPACE_H

#include <linux/filter.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "layout.h"

namespace systrap {

// Start of every error about a stub that application code broke, for example by jumping into the
// stub's code. The TypeScript side recognises it and raises StubDestroyedError.
constexpr const char* kStubDestroyed = "the sandboxed program destroyed its stub";

struct StubOptions {
  // How long the stub's threads spin before they sleep on a futex, in TSC ticks.
  uint64_t stub_spin_ticks;
  // How long the sentry spins on a control request before it sleeps, in TSC ticks.
  uint64_t sentry_spin_ticks;
};

class StubProcess {
 public:
  // Forks the stub from the calling thread, which must be the thread that lives as long as the
  // process (the JavaScript main thread), because PR_SET_PDEATHSIG follows the forking thread.
  explicit StubProcess(const StubOptions& options);
  ~StubProcess();

  StubProcess(const StubProcess&) = delete;
  StubProcess& operator=(const StubProcess&) = delete;

  void MapFile(uint64_t addr, int fd, uint64_t offset, uint64_t length, int prot);
  void Unmap(uint64_t addr, uint64_t length);

  // Starts a stub thread and waits until it sits in its handler; returns its slot index.
  int NewThread();
  // Makes the thread in `slot` exit and frees the slot. The thread must be waiting in its handler.
  void ExitThread(int slot);

  // SIGKILLs and reaps the stub. The shared region stays mapped until the object is destroyed,
  // so a context still waiting on a slot reads valid memory and then finds that the stub died.
  void Kill();

  // Returns an empty string while the stub runs, otherwise how it ended.
  std::string ExitReason();

  // Returns an empty string while the thread in `slot` lives, otherwise why it is gone.
  std::string ThreadExitReason(int slot);

  pid_t pid() const { return pid_; }
  pid_t ThreadId(int slot) const;
  uint8_t* SlotBase(int slot) const { return shared_ + SLOT_FIRST_OFFSET + static_cast<size_t>(slot) * SLOT_SIZE; }
  std::atomic<uint32_t>* SlotWord(int slot, size_t offset) const {
    return reinterpret_cast<std::atomic<uint32_t>*>(SlotBase(slot) + offset);
  }
  // Translates a stub address inside `slot` to the sentry's mapping, or nullptr when the
  // `length` bytes at `stub_address` are not inside the slot's alternate signal stack.
  uint8_t* TranslateInSlot(int slot, uint64_t stub_address, size_t length) const;

  // Wakes every futex word the sentry may be waiting on, so waiters re-check the stub's state.
  void WakeAllWaiters();

 private:
  long Request(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5);
  // Waits until the control thread has reported request `sequence` done.
  void WaitForControl(uint32_t sequence, const char* what);
  void StoreProgram(size_t fprog_offset, size_t filter_offset, const std::vector<sock_filter>& filter);
  std::atomic<uint32_t>* DoneSequence() const { return reinterpret_cast<std::atomic<uint32_t>*>(shared_ + HDR_DONE_SEQ); }
  int StubDescriptorFor(int fd);
  std::string DescribeStartFailure(int status);

  StubOptions options_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int socket_ = -1;
  int memfd_ = -1;
  uint8_t* shared_ = nullptr;
  bool killed_ = false;
  uint32_t request_sequence_ = 0;
  std::mutex exit_mutex_;
  std::string exit_reason_;
  std::vector<bool> slot_used_;

  struct CachedDescriptor {
    dev_t dev;
    ino_t ino;
    int stub_fd;
  };
  std::map<int, CachedDescriptor> descriptors_;
};

}  // namespace systrap

#endif
