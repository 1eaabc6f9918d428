// A context's native half: resumes one stub thread with PTRACE_SYSEMU and collects its next stop.
//
// The JavaScript main thread is the tracer, so switch() issues every ptrace request itself with
// no thread hop. After resuming, it polls waitpid(WNOHANG) for a short time; most system calls
// come back within that window and switch() returns the SwitchKind number. Otherwise it returns a
// promise, and the context's waiter thread blocks in waitid(WNOWAIT), which any thread of the
// tracer's process may do, then wakes the main thread through a thread-safe function. The main
// thread collects the stop with waitpid, reads the registers and settles the promise.
//
// Locking: Waiter::mutex guards the request fields only; everything else is main-thread state.
#pragma once

#include <napi.h>
#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace tsvisor_ptrace {

// Values of platform-api's SwitchKind.
enum SwitchKindValue : int { kSyscall = 0, kFault = 1, kSignal = 2, kInterrupted = 3 };

// Byte offsets in platform-api's Registers buffer.
constexpr size_t kFpStateOffset = 256;
constexpr size_t kFpStateSize = 4096;
constexpr size_t kRegistersSize = kFpStateOffset + kFpStateSize;
constexpr size_t kSignalInfoSize = 128;

class NativeContext;

struct Waiter;
void CallJsOnStop(Napi::Env env, Napi::Function unused, Waiter* waiter, uint64_t* generation);
using WaiterFunction = Napi::TypedThreadSafeFunction<Waiter, uint64_t, CallJsOnStop>;

// State shared between a context and its waiter thread. It outlives the context while the thread
// or the thread-safe function still refers to it.
struct Waiter {
  std::mutex mutex;
  std::condition_variable wake;
  pid_t requestTid = 0;
  uint64_t requestGeneration = 0;
  bool quit = false;
  // Kernel thread id of the waiter thread, set when it starts.
  pid_t threadId = 0;

  // Main thread only. Null once the context is released.
  NativeContext* owner = nullptr;
  WaiterFunction function;
  std::thread thread;
};

class NativeContext : public Napi::ObjectWrap<NativeContext> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new NativeContext(signalInfo: Uint8Array(128), spinMicroseconds: number)
  explicit NativeContext(const Napi::CallbackInfo& info);
  ~NativeContext() override;

  void OnWaiterEvent(Napi::Env env, uint64_t generation);

 private:
  // switch(tid, registers: Uint8Array): number | Promise<number>
  Napi::Value Switch(const Napi::CallbackInfo& info);
  void Interrupt(const Napi::CallbackInfo& info);
  // Stops the thread of a switch in progress and collects the stop, which settles the switch:
  // Interrupted, unless the thread had stopped for another reason first.
  void Cancel(const Napi::CallbackInfo& info);
  // Joins the waiter thread. The stub threads of the context must be gone or stopped already.
  void Release(const Napi::CallbackInfo& info);
  // Drops the remembered FPU state, so that the next switch writes it in full. Called for every
  // new stub thread, whose id may be that of a thread that has exited.
  void ForgetFpState(const Napi::CallbackInfo& info);

  void Resume(pid_t tid, uint8_t* regs);
  // Returns whether the syscall-stop of `tid` comes from a 32-bit entry such as int 0x80.
  bool IsCompatSystemCall(pid_t tid, const uint8_t* regs);
  // Stores in signalInfo_ the SIGSYS siginfo of a 32-bit system call whose registers are `regs`.
  void StoreCompatSigsys(const uint8_t* regs);
  int FinishStop(pid_t tid, int status, uint8_t* regs);
  void StartWaiting(Napi::Env env, pid_t tid);
  void Settle(Napi::Env env, pid_t tid, int status, bool collected);
  void StopWaiter();

  uint8_t* signalInfo_;
  Napi::Reference<Napi::Uint8Array> signalInfoRef_;
  int64_t spinNanoseconds_;

  bool interruptRequested_ = false;
  // Thread resumed by the switch in progress, or 0.
  pid_t runningTid_ = 0;
  std::optional<Napi::Promise::Deferred> deferred_;
  Napi::Reference<Napi::Uint8Array> pendingRegs_;
  uint64_t generation_ = 0;

  std::shared_ptr<Waiter> waiter_;

  // FPU state read at the last stop of thread lastFpTid_ (0: none known).
  pid_t lastFpTid_ = 0;
  size_t lastFpSize_ = 0;
  alignas(64) uint8_t lastFp_[kFpStateSize];
};

}  // namespace tsvisor_ptrace
