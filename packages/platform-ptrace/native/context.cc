#include "context.h"

#include <elf.h>
#include <linux/audit.h>
#include <sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "error.h"
#include "stub.h"

namespace tsvisor_ptrace {

namespace {

int64_t MonotonicNanoseconds() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

// si_code of a SIGSYS raised by a seccomp filter.
constexpr int kSysSeccomp = 1;

// XSAVE header field XSTATE_BV, after the 512-byte legacy FXSAVE area.
constexpr size_t kXstateBvOffset = 512;
constexpr uint64_t kX87AndSse = 0x3;

std::string ThreadName(pid_t tid) { return "stub thread " + std::to_string(tid); }

void WaiterMain(std::shared_ptr<Waiter> waiter) {
  std::unique_lock<std::mutex> lock(waiter->mutex);
  waiter->threadId = static_cast<pid_t>(syscall(SYS_gettid));
  for (;;) {
    waiter->wake.wait(lock, [&] { return waiter->quit || waiter->requestTid != 0; });
    if (waiter->quit) return;
    pid_t tid = waiter->requestTid;
    uint64_t generation = waiter->requestGeneration;
    waiter->requestTid = 0;
    lock.unlock();

    // WNOWAIT leaves the stop for the main thread to collect, because only the tracer thread may
    // issue ptrace requests and the stop must stay visible to it. ECHILD (the thread is gone)
    // is reported the same way; the main thread finds out which.
    siginfo_t info;
    while (waitid(P_PID, tid, &info, WSTOPPED | WEXITED | WNOWAIT | __WALL) != 0 && errno == EINTR) {
    }
    waiter->function.NonBlockingCall(new uint64_t(generation));

    lock.lock();
  }
}

// pthread_join returns when the thread has cleared its tid, which the kernel does before the
// thread has fully exited. Waiting for its /proc entry to go as well means that a released
// context has really left no thread behind. Gives up after about a second.
void WaitUntilThreadGone(pid_t threadId) {
  if (threadId == 0) return;
  std::string path = "/proc/self/task/" + std::to_string(threadId);
  int64_t deadline = MonotonicNanoseconds() + 1000000000;
  while (access(path.c_str(), F_OK) == 0 && MonotonicNanoseconds() < deadline) sched_yield();
}

}  // namespace

void CallJsOnStop(Napi::Env env, Napi::Function, Waiter* waiter, uint64_t* generation) {
  uint64_t value = *generation;
  delete generation;
  if (env == nullptr || waiter->owner == nullptr) return;
  waiter->owner->OnWaiterEvent(env, value);
}

Napi::Function NativeContext::Define(Napi::Env env) {
  return DefineClass(env, "NativeContext", {
    InstanceMethod<&NativeContext::Switch>("switch"),
    InstanceMethod<&NativeContext::Interrupt>("interrupt"),
    InstanceMethod<&NativeContext::Cancel>("cancel"),
    InstanceMethod<&NativeContext::Release>("release"),
    InstanceMethod<&NativeContext::ForgetFpState>("forgetFpState"),
  });
}

NativeContext::NativeContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeContext>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[0].As<Napi::Uint8Array>().ByteLength() < kSignalInfoSize) {
    throw Napi::TypeError::New(env, "NativeContext: the first argument must be a Uint8Array of at least 128 bytes for siginfo");
  }
  Napi::Uint8Array signalInfo = info[0].As<Napi::Uint8Array>();
  signalInfo_ = signalInfo.Data();
  signalInfoRef_ = Napi::Persistent(signalInfo);
  spinNanoseconds_ = static_cast<int64_t>(info[1].As<Napi::Number>().DoubleValue() * 1000);
}

NativeContext::~NativeContext() {
  // Released contexts have no waiter left. The waiter of a context garbage-collected without
  // release may be blocked on a live stub thread, so it is detached rather than joined. The
  // shared Waiter keeps the memory that thread uses alive.
  if (waiter_) {
    {
      std::lock_guard<std::mutex> lock(waiter_->mutex);
      waiter_->quit = true;
    }
    waiter_->wake.notify_one();
    waiter_->owner = nullptr;
    if (waiter_->thread.joinable()) waiter_->thread.detach();
    waiter_->function.Release();
  }
}

// PTRACE_SYSEMU stops at int 0x80 (and at sysenter from 32-bit code) exactly as at SYSCALL, with
// the 32-bit number in orig_rax. Running such a call as the x86-64 call of the same number would be
// wrong (i386 write is x86-64 stat). PTRACE_GET_SYSCALL_INFO (Linux 5.3) returns the entry's
// architecture, but it made the getpid round trip about 8 us slower on a 2-CPU VM (Linux 6.18).
// So it is asked only when the registers rule out SYSCALL. SYSCALL leaves the return address in
// rcx and the flags in r11, and the kernel saves those as rip and eflags.
//
// NOTE: a program that sets rcx and r11 to exactly those values before int 0x80 gets the x86-64
// call of the same number with the same registers. That is what a syscall instruction at that
// point would make, so the program gains nothing it could not do directly.
bool NativeContext::IsCompatSystemCall(pid_t tid, const uint8_t* regs) {
  uint64_t rip, rcx, eflags, r11;
  std::memcpy(&rip, regs + offsetof(user_regs_struct, rip), sizeof rip);
  std::memcpy(&rcx, regs + offsetof(user_regs_struct, rcx), sizeof rcx);
  std::memcpy(&eflags, regs + offsetof(user_regs_struct, eflags), sizeof eflags);
  std::memcpy(&r11, regs + offsetof(user_regs_struct, r11), sizeof r11);
  if (rcx == rip && r11 == eflags) return false;

  // Only the first 8 bytes (op and arch) are copied.
  __ptrace_syscall_info info;
  constexpr size_t kHeaderSize = offsetof(__ptrace_syscall_info, instruction_pointer);
  if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, kHeaderSize, &info) < 0) {
    throw SystemError("PTRACE_GET_SYSCALL_INFO of " + ThreadName(tid), errno);
  }
  return info.arch == AUDIT_ARCH_I386;
}

// Fills the siginfo that a seccomp filter trapping every non-x86-64 entry would raise, the way
// the systrap platform reports such a call, so the sentry sees the same event on every platform.
void NativeContext::StoreCompatSigsys(const uint8_t* regs) {
  uint64_t rip;
  uint64_t number;
  std::memcpy(&rip, regs + offsetof(user_regs_struct, rip), sizeof rip);
  std::memcpy(&number, regs + offsetof(user_regs_struct, orig_rax), sizeof number);

  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  info.si_signo = SIGSYS;
  info.si_code = kSysSeccomp;
  info.si_call_addr = reinterpret_cast<void*>(rip);
  info.si_syscall = static_cast<int>(number);
  info.si_arch = AUDIT_ARCH_I386;
  std::memcpy(signalInfo_, &info, kSignalInfoSize);
}

void NativeContext::Resume(pid_t tid, uint8_t* regs) {
  if (ptrace(PTRACE_SETREGS, tid, nullptr, regs) != 0) {
    // EIO means the kernel rejected a value, typically a segment selector that is not a user one.
    const char* hint = errno == EIO ? " (invalid cs, ss or segment selector? Registers.reset() sets valid ones)" : "";
    throw SystemError("PTRACE_SETREGS of " + ThreadName(tid) + hint, errno);
  }

  // Most system calls leave the FPU state alone, so writing it back is skipped when the buffer
  // still contains exactly what the last stop of this thread read.
  uint8_t* fp = regs + kFpStateOffset;
  bool fpUnchanged = tid == lastFpTid_ && std::memcmp(fp, lastFp_, lastFpSize_) == 0;
  if (!fpUnchanged) {
    // The kernel clears a component's XSTATE_BV bit when the component is in its initial state,
    // and then ignores that component's bytes on write. The legacy area always contains valid x87
    // and SSE values because the kernel fills in initial ones. Marking both present therefore
    // makes a change the sentry made to them, such as to an XMM register, take effect.
    uint64_t xstateBv;
    std::memcpy(&xstateBv, fp + kXstateBvOffset, sizeof xstateBv);
    xstateBv |= kX87AndSse;
    std::memcpy(fp + kXstateBvOffset, &xstateBv, sizeof xstateBv);

    // NOTE: the kernel accepts only a complete XSAVE image, so CPUs whose XSAVE area exceeds the
    // 4096 bytes Registers reserves (AMX tiles, about 11 KiB) fail here with EFAULT.
    iovec fpState{fp, kFpStateSize};
    if (ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, &fpState) != 0) {
      lastFpTid_ = 0;
      throw SystemError("PTRACE_SETREGSET(NT_X86_XSTATE) of " + ThreadName(tid), errno);
    }
  }
  if (ptrace(PTRACE_SYSEMU, tid, nullptr, nullptr) != 0) throw SystemError("PTRACE_SYSEMU of " + ThreadName(tid), errno);
}

int NativeContext::FinishStop(pid_t tid, int status, uint8_t* regs) {
  if (!WIFSTOPPED(status)) throw SystemError("stub thread ended during a switch: " + DescribeStatus(tid, status));

  if (ptrace(PTRACE_GETREGS, tid, nullptr, regs) != 0) throw SystemError("PTRACE_GETREGS of " + ThreadName(tid), errno);
  iovec fpState{regs + kFpStateOffset, kFpStateSize};
  if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &fpState) != 0) {
    lastFpTid_ = 0;
    throw SystemError("PTRACE_GETREGSET(NT_X86_XSTATE) of " + ThreadName(tid), errno);
  }
  lastFpSize_ = fpState.iov_len;
  std::memcpy(lastFp_, regs + kFpStateOffset, lastFpSize_);
  lastFpTid_ = tid;

  int signal = WSTOPSIG(status);
  if (signal == (SIGTRAP | 0x80)) {
    // At syscall entry the kernel has already set rax to -ENOSYS; the application's rax (the
    // system call number) survives in orig_rax.
    std::memcpy(regs + offsetof(user_regs_struct, rax), regs + offsetof(user_regs_struct, orig_rax), sizeof(uint64_t));
    if (IsCompatSystemCall(tid, regs)) {
      StoreCompatSigsys(regs);
      return kSignal;
    }
    return kSyscall;
  }
  if ((status >> 16) != 0) throw SystemError("unexpected ptrace stop during a switch: " + DescribeStatus(tid, status));
  if (signal == SIGSTOP) return kInterrupted;

  // The JavaScript side classifies the signal as a fault or not from the siginfo.
  if (ptrace(PTRACE_GETSIGINFO, tid, nullptr, signalInfo_) != 0) {
    throw SystemError("PTRACE_GETSIGINFO of " + ThreadName(tid), errno);
  }
  return kSignal;
}

Napi::Value NativeContext::Switch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (deferred_) throw Napi::Error::New(env, "switch: this context is already inside a switch; await it first");

  pid_t tid = info[0].As<Napi::Number>().Int32Value();
  Napi::Uint8Array regsArray = info[1].As<Napi::Uint8Array>();
  if (regsArray.ByteLength() < kRegistersSize) throw Napi::TypeError::New(env, "switch: the registers buffer is too small");
  uint8_t* regs = regsArray.Data();

  if (interruptRequested_) {
    interruptRequested_ = false;
    return Napi::Number::New(env, kInterrupted);
  }

  try {
    Resume(tid, regs);

    // Poll for the stop for a bounded time, so a quick system call costs no thread hop. The
    // kernel often wakes the tracee on this CPU, where it could only run once this thread is
    // preempted; sched_yield lets it run at once.
    int64_t deadline = MonotonicNanoseconds() + spinNanoseconds_;
    do {
      int status = 0;
      pid_t r = WaitThread(tid, &status, WNOHANG);
      if (r == tid) return Napi::Number::New(env, FinishStop(tid, status, regs));
      if (r < 0) throw SystemError("waitpid for " + ThreadName(tid), errno);
      sched_yield();
    } while (MonotonicNanoseconds() < deadline);
  } catch (const SystemError& error) {
    throw ToJs(env, error);
  }

  runningTid_ = tid;
  generation_++;
  deferred_.emplace(Napi::Promise::Deferred::New(env));
  pendingRegs_ = Napi::Persistent(regsArray);
  StartWaiting(env, tid);
  return deferred_->Promise();
}

void NativeContext::StartWaiting(Napi::Env env, pid_t tid) {
  if (!waiter_) {
    waiter_ = std::make_shared<Waiter>();
    waiter_->owner = this;
    auto* keepAlive = new std::shared_ptr<Waiter>(waiter_);
    waiter_->function = WaiterFunction::New(
        env, "tsvisor-ptrace-waiter", 0, 1, waiter_.get(),
        [](Napi::Env, std::shared_ptr<Waiter>* keep, Waiter*) { delete keep; }, keepAlive);
    waiter_->thread = std::thread(WaiterMain, waiter_);
  } else {
    waiter_->function.Ref(env);
  }

  {
    std::lock_guard<std::mutex> lock(waiter_->mutex);
    waiter_->requestTid = tid;
    waiter_->requestGeneration = generation_;
  }
  waiter_->wake.notify_one();
}

void NativeContext::OnWaiterEvent(Napi::Env env, uint64_t generation) {
  if (!deferred_ || generation != generation_) return;

  int status = 0;
  pid_t r = WaitThread(runningTid_, &status, WNOHANG);
  if (r == 0) {
    // The thread has not stopped after all; wait again.
    std::lock_guard<std::mutex> lock(waiter_->mutex);
    waiter_->requestTid = runningTid_;
    waiter_->requestGeneration = generation_;
    waiter_->wake.notify_one();
    return;
  }
  Settle(env, runningTid_, status, r > 0);
}

void NativeContext::Settle(Napi::Env env, pid_t tid, int status, bool collected) {
  Napi::Promise::Deferred deferred = *deferred_;
  deferred_.reset();
  uint8_t* regs = pendingRegs_.Value().Data();
  pendingRegs_.Reset();
  runningTid_ = 0;
  waiter_->function.Unref(env);

  if (!collected) {
    deferred.Reject(Napi::Error::New(env, ThreadName(tid) + " no longer exists, so its switch cannot finish; "
                                              "was its address space released during the switch?").Value());
    return;
  }
  try {
    deferred.Resolve(Napi::Number::New(env, FinishStop(tid, status, regs)));
  } catch (const SystemError& error) {
    deferred.Reject(ToJs(env, error).Value());
  }
}

void NativeContext::Interrupt(const Napi::CallbackInfo&) {
  if (runningTid_ != 0) {
    // tkill queues SIGSTOP for this thread only. The tracee reports it as a signal-delivery-stop
    // and the next resume suppresses it, so it never stops the whole thread group.
    syscall(SYS_tkill, runningTid_, SIGSTOP);
  } else {
    interruptRequested_ = true;
  }
}

void NativeContext::Cancel(const Napi::CallbackInfo& info) {
  if (!deferred_) return;
  pid_t tid = runningTid_;
  syscall(SYS_tkill, tid, SIGSTOP);

  int status = 0;
  pid_t r;
  do {
    r = WaitThread(tid, &status, 0);
  } while (r > 0 && !WIFSTOPPED(status) && !WIFEXITED(status) && !WIFSIGNALED(status));

  generation_++;
  Settle(info.Env(), tid, status, r > 0);
}

void NativeContext::StopWaiter() {
  if (!waiter_) return;
  {
    std::lock_guard<std::mutex> lock(waiter_->mutex);
    waiter_->quit = true;
  }
  waiter_->wake.notify_one();
  if (waiter_->thread.joinable()) waiter_->thread.join();
  WaitUntilThreadGone(waiter_->threadId);
  waiter_->owner = nullptr;
  waiter_->function.Release();
  waiter_.reset();
}

void NativeContext::ForgetFpState(const Napi::CallbackInfo&) { lastFpTid_ = 0; }

void NativeContext::Release(const Napi::CallbackInfo& info) {
  if (deferred_) throw Napi::Error::New(info.Env(), "release: the context is inside a switch; cancel it first");
  StopWaiter();
  signalInfoRef_.Reset();
}

}  // namespace tsvisor_ptrace
