// A context: runs application code on stub threads and turns their signal frames into registers.
#ifndef TSVISOR_SYSTRAP_CONTEXT_H
#define TSVISOR_SYSTRAP_CONTEXT_H

#include <signal.h>
#include <sys/ucontext.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "address_space.h"

namespace systrap {

// Values of SwitchKind in @tsvisor/platform-api, and the kPending result of Switch.
enum SwitchResult : int { kSyscall = 0, kFault = 1, kSignal = 2, kInterrupted = 3, kPending = -1 };

// Layout of the per-context event buffer that JavaScript reads after a switch.
constexpr size_t kEventSignalInfo = 0;
constexpr size_t kEventFaultAddress = 128;
constexpr size_t kEventFaultAccess = 136;
constexpr size_t kEventSize = 144;

class ContextCore {
 public:
  // `event` is kEventSize bytes that outlive the context. `notify` is called on the waiter
  // thread when an event that Switch returned kPending for has arrived.
  ContextCore(uint8_t* event, uint64_t spin_ticks, std::function<void()> notify);
  ~ContextCore();

  // Loads `regs` into the frame of the stub thread in `slot`, lets it run, and spins for the next
  // event. Returns the SwitchResult, or kPending; then call StartWait and, once notified, Complete.
  int Switch(const std::shared_ptr<StubProcess>& stub, int slot, uint8_t* regs);
  void StartWait();
  int Complete(uint8_t* regs);

  // Sends the interrupt signal to the running stub thread; returns false when nothing runs.
  bool Interrupt();

  // Ends and joins the waiter thread. Idempotent.
  void Stop();

 private:
  void WriteFrame(uint8_t* regs);
  int ReadFrame(uint8_t* regs);
  bool IsBypassedUretprobe(const siginfo_t* info, const greg_t* g) const;
  void WaiterMain();

  uint8_t* event_;
  uint64_t spin_ticks_;
  std::function<void()> notify_;

  std::shared_ptr<StubProcess> stub_;
  int slot_ = -1;
  bool running_ = false;

  std::thread waiter_;
  std::mutex mutex_;
  std::condition_variable wake_waiter_;
  bool has_job_ = false;
  std::atomic<bool> quit_{false};
  std::string wait_error_;
};

}  // namespace systrap

#endif
