// Switching into a stub thread and back.
//
// A stub thread waiting in its handler owns nothing: its signal frame is in the shared slot and
// the sentry edits it directly. Switch writes the registers into the frame, sets SLOT_RESUME and
// spins for the next SLOT_EVENT; on the fast path that is the whole round trip, without a futex
// call or a thread hop. When the application runs longer than the spin budget, a waiter thread
// (one per context, started on first use) sleeps on the slot's futex and notifies JavaScript.
#include "context.h"

#include <linux/audit.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/ucontext.h>
#include <sys/user.h>
#include <unistd.h>

#include <cstring>

#include "futex.h"
#include "host_error.h"
#include "timing.h"

namespace systrap {

namespace {

constexpr long kLivenessCheckNs = 20000000;
constexpr unsigned int kRoundsPerYield = 32;

constexpr uint32_t kXstateMagic1 = 0x46505853;
constexpr size_t kFxsaveSize = 512;
constexpr size_t kSwBytesOffset = 464;
constexpr size_t kSwBytesSize = 48;
constexpr size_t kXsaveHeaderOffset = 512;
constexpr size_t kXsaveHeaderSize = 64;
constexpr size_t kRegistersFpOffset = 256;
constexpr size_t kRegistersFpSize = 4096;

constexpr int kTrapPageFault = 14;
constexpr uint64_t kPageFaultWrite = 0x2;
constexpr uint64_t kPageFaultInstructionFetch = 0x10;
constexpr uint32_t kAccessRead = 1;
constexpr uint32_t kAccessWrite = 2;
constexpr uint32_t kAccessExecute = 4;

constexpr unsigned long long kSyscallUretprobe = 335;

constexpr uint64_t kUserCs = 0x33;
constexpr uint64_t kUserSs = 0x2b;

// The kernel's ucontext ends with an 8-byte signal mask; glibc's ucontext_t is longer.
constexpr size_t kKernelUcontextSize = offsetof(ucontext_t, uc_sigmask) + 8;

template <typename T>
T Load(const uint8_t* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

template <typename T>
void Store(uint8_t* at, T value) {
  std::memcpy(at, &value, sizeof(T));
}

}  // namespace

// Since Linux 6.11 the uretprobe system call (335) skips every seccomp filter. Made from anywhere
// but a uretprobe trampoline, it raises SIGILL (SI_KERNEL) and returns -1, so such a SIGILL right
// after a syscall instruction is that system call, and the sentry gets it like any other.
// NOTE: the uprobe system call (336, Linux 6.16) skips seccomp too but returns -ENXIO without a
// signal, so an application can make it without the sentry seeing it.
bool ContextCore::IsBypassedUretprobe(const siginfo_t* info, const greg_t* g) const {
  if (info->si_code != SI_KERNEL || g[REG_RAX] != -1) return false;
  uint8_t instruction[2];
  iovec local = {instruction, sizeof(instruction)};
  iovec remote = {reinterpret_cast<void*>(g[REG_RIP] - 2), sizeof(instruction)};
  if (process_vm_readv(stub_->pid(), &local, 1, &remote, 1, 0) != sizeof(instruction)) return false;
  return instruction[0] == 0x0f && instruction[1] == 0x05;
}

ContextCore::ContextCore(uint8_t* event, uint64_t spin_ticks, std::function<void()> notify)
    : event_(event), spin_ticks_(spin_ticks), notify_(std::move(notify)) {}

ContextCore::~ContextCore() { Stop(); }

void ContextCore::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    quit_.store(true);
  }
  wake_waiter_.notify_all();
  if (stub_ && slot_ >= 0) FutexWake(stub_->SlotWord(slot_, SLOT_STATE));
  if (waiter_.joinable()) waiter_.join();
  stub_.reset();
}

int ContextCore::Switch(const std::shared_ptr<StubProcess>& stub, int slot, uint8_t* regs) {
  if (running_) throw HostError("systrap: switch called while another switch of this context is in progress");
  stub_ = stub;
  slot_ = slot;
  auto* state = stub->SlotWord(slot, SLOT_STATE);
  if (state->load(std::memory_order_acquire) != SLOT_EVENT) {
    const std::string reason = stub->ThreadExitReason(slot);
    if (!reason.empty()) throw HostError("systrap: " + reason);
    throw HostError("systrap: the stub thread is not waiting for a switch");
  }

  WriteFrame(regs);
  running_ = true;
  state->exchange(SLOT_RESUME);
  if (stub->SlotWord(slot, SLOT_STUB_SLEEPING)->load() != 0) FutexWake(state);

  const uint64_t start = ReadTsc();
  for (unsigned int round = 1;; round++) {
    if (state->load(std::memory_order_acquire) == SLOT_EVENT) {
      running_ = false;
      return ReadFrame(regs);
    }
    __builtin_ia32_pause();
    // Yielding now and then lets a stub thread that shares this CPU run; a thread alone on its
    // CPU returns from sched_yield at once.
    if (round % kRoundsPerYield == 0) {
      sched_yield();
      if (ReadTsc() - start >= spin_ticks_) break;
    }
  }
  return kPending;
}

void ContextCore::StartWait() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!waiter_.joinable()) waiter_ = std::thread(&ContextCore::WaiterMain, this);
  wait_error_.clear();
  has_job_ = true;
  wake_waiter_.notify_one();
}

int ContextCore::Complete(uint8_t* regs) {
  std::string error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    error = wait_error_;
  }
  running_ = false;
  if (!error.empty()) throw HostError("systrap: " + error);
  return ReadFrame(regs);
}

bool ContextCore::Interrupt() {
  if (!running_ || !stub_) return false;
  syscall(SYS_tgkill, stub_->pid(), stub_->ThreadId(slot_), STUB_INTERRUPT_SIGNAL);
  return true;
}

void ContextCore::WaiterMain() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_waiter_.wait(lock, [this] { return has_job_ || quit_.load(); });
    if (quit_.load()) return;
    has_job_ = false;
    std::shared_ptr<StubProcess> stub = stub_;
    const int slot = slot_;
    lock.unlock();

    std::string error;
    auto* state = stub->SlotWord(slot, SLOT_STATE);
    auto* sleeping = stub->SlotWord(slot, SLOT_SENTRY_SLEEPING);
    sleeping->exchange(1);
    for (;;) {
      const uint32_t current = state->load(std::memory_order_acquire);
      if (current == SLOT_EVENT) break;
      if (quit_.load()) {
        error = "the context was released during a switch";
        break;
      }
      error = stub->ThreadExitReason(slot);
      if (!error.empty()) break;
      FutexWait(state, current, kLivenessCheckNs);
    }
    sleeping->store(0);

    lock.lock();
    if (quit_.load()) return;
    wait_error_ = error;
    notify_();
  }
}

void ContextCore::WriteFrame(uint8_t* regs) {
  uint8_t* slot = stub_->SlotBase(slot_);
  auto* uc = reinterpret_cast<ucontext_t*>(
      stub_->TranslateInSlot(slot_, Load<uint64_t>(slot + SLOT_UCONTEXT), kKernelUcontextSize));
  if (uc == nullptr) throw HostError("systrap: the stub thread's signal frame lies outside its slot");
  const auto* user = reinterpret_cast<const user_regs_struct*>(regs);
  greg_t* g = uc->uc_mcontext.gregs;

  g[REG_R8] = user->r8;
  g[REG_R9] = user->r9;
  g[REG_R10] = user->r10;
  g[REG_R11] = user->r11;
  g[REG_R12] = user->r12;
  g[REG_R13] = user->r13;
  g[REG_R14] = user->r14;
  g[REG_R15] = user->r15;
  g[REG_RDI] = user->rdi;
  g[REG_RSI] = user->rsi;
  g[REG_RBP] = user->rbp;
  g[REG_RBX] = user->rbx;
  g[REG_RDX] = user->rdx;
  g[REG_RAX] = user->rax;
  g[REG_RCX] = user->rcx;
  g[REG_RSP] = user->rsp;
  g[REG_RIP] = user->rip;
  g[REG_EFL] = user->eflags;
  // Only 64-bit user code runs here; rt_sigreturn takes cs and ss from the frame.
  g[REG_CSGSFS] = static_cast<greg_t>(kUserCs | (kUserSs << 48));
  Store<uint64_t>(slot + SLOT_FS_BASE, user->fs_base);
  Store<uint64_t>(slot + SLOT_GS_BASE, user->gs_base);

  uint8_t* fx = stub_->TranslateInSlot(slot_, reinterpret_cast<uint64_t>(uc->uc_mcontext.fpregs), kFxsaveSize);
  if (fx == nullptr) throw HostError("systrap: the stub thread's FPU state lies outside its slot");
  size_t size = kFxsaveSize;
  uint64_t features = 0;
  if (Load<uint32_t>(fx + kSwBytesOffset) == kXstateMagic1) {
    features = Load<uint64_t>(fx + kSwBytesOffset + 8);
    size = Load<uint32_t>(fx + kSwBytesOffset + 16);
    if (stub_->TranslateInSlot(slot_, reinterpret_cast<uint64_t>(uc->uc_mcontext.fpregs), size) == nullptr) {
      throw HostError("systrap: the stub thread's XSAVE area lies outside its slot");
    }
  }

  // Keep what the kernel checks on rt_sigreturn: the software-reserved bytes that describe the
  // frame's XSAVE layout, a valid MXCSR, and an XSAVE header naming only enabled features.
  uint8_t sw_bytes[kSwBytesSize];
  std::memcpy(sw_bytes, fx + kSwBytesOffset, kSwBytesSize);
  uint32_t mxcsr_mask = Load<uint32_t>(fx + 28);
  if (mxcsr_mask == 0) mxcsr_mask = 0xffbf;
  std::memcpy(fx, regs + kRegistersFpOffset, size < kRegistersFpSize ? size : kRegistersFpSize);
  std::memcpy(fx + kSwBytesOffset, sw_bytes, kSwBytesSize);
  Store<uint32_t>(fx + 24, Load<uint32_t>(fx + 24) & mxcsr_mask);
  Store<uint32_t>(fx + 28, mxcsr_mask);
  if (size > kXsaveHeaderOffset) {
    Store<uint64_t>(fx + kXsaveHeaderOffset, Load<uint64_t>(fx + kXsaveHeaderOffset) & features);
    std::memset(fx + kXsaveHeaderOffset + 8, 0, kXsaveHeaderSize - 8);
  }
}

int ContextCore::ReadFrame(uint8_t* regs) {
  uint8_t* slot = stub_->SlotBase(slot_);
  auto* uc = reinterpret_cast<ucontext_t*>(
      stub_->TranslateInSlot(slot_, Load<uint64_t>(slot + SLOT_UCONTEXT), kKernelUcontextSize));
  const uint8_t* info = stub_->TranslateInSlot(slot_, Load<uint64_t>(slot + SLOT_SIGINFO), 128);
  if (uc == nullptr || info == nullptr) throw HostError("systrap: the stub thread's signal frame lies outside its slot");
  auto* user = reinterpret_cast<user_regs_struct*>(regs);
  const greg_t* g = uc->uc_mcontext.gregs;

  user->r8 = g[REG_R8];
  user->r9 = g[REG_R9];
  user->r10 = g[REG_R10];
  user->r11 = g[REG_R11];
  user->r12 = g[REG_R12];
  user->r13 = g[REG_R13];
  user->r14 = g[REG_R14];
  user->r15 = g[REG_R15];
  user->rdi = g[REG_RDI];
  user->rsi = g[REG_RSI];
  user->rbp = g[REG_RBP];
  user->rbx = g[REG_RBX];
  user->rdx = g[REG_RDX];
  user->rax = g[REG_RAX];
  user->rcx = g[REG_RCX];
  user->rsp = g[REG_RSP];
  user->rip = g[REG_RIP];
  user->eflags = g[REG_EFL];
  user->cs = static_cast<uint64_t>(g[REG_CSGSFS]) & 0xffff;
  user->ss = (static_cast<uint64_t>(g[REG_CSGSFS]) >> 48) & 0xffff;
  user->ds = user->es = user->fs = user->gs = 0;
  user->fs_base = Load<uint64_t>(slot + SLOT_FS_BASE);
  user->gs_base = Load<uint64_t>(slot + SLOT_GS_BASE);
  user->orig_rax = static_cast<unsigned long long>(-1);

  const uint8_t* fx = stub_->TranslateInSlot(slot_, reinterpret_cast<uint64_t>(uc->uc_mcontext.fpregs), kFxsaveSize);
  if (fx != nullptr) {
    size_t size = kFxsaveSize;
    if (Load<uint32_t>(fx + kSwBytesOffset) == kXstateMagic1) size = Load<uint32_t>(fx + kSwBytesOffset + 16);
    if (size > kRegistersFpSize) size = kRegistersFpSize;
    if (stub_->TranslateInSlot(slot_, reinterpret_cast<uint64_t>(uc->uc_mcontext.fpregs), size) != nullptr) {
      std::memcpy(regs + kRegistersFpOffset, fx, size);
    }
  }

  std::memcpy(event_ + kEventSignalInfo, info, 128);
  const auto* siginfo = reinterpret_cast<const siginfo_t*>(info);
  const int signo = static_cast<int>(Load<uint64_t>(slot + SLOT_SIGNO));
  switch (signo) {
    case SIGSYS:
      if (siginfo->si_code == 1 /* SYS_SECCOMP */ && siginfo->si_arch == AUDIT_ARCH_X86_64) {
        user->orig_rax = static_cast<unsigned long long>(static_cast<long long>(siginfo->si_syscall));
        return kSyscall;
      }
      return kSignal;
    case SIGSEGV:
    case SIGBUS:
      if (g[REG_TRAPNO] != kTrapPageFault) return kSignal;
      {
        const uint64_t error_code = static_cast<uint64_t>(g[REG_ERR]);
        uint32_t access = kAccessRead;
        if (error_code & kPageFaultInstructionFetch) {
          access = kAccessExecute;
        } else if (error_code & kPageFaultWrite) {
          access = kAccessWrite;
        }
        Store<uint64_t>(event_ + kEventFaultAddress, reinterpret_cast<uint64_t>(siginfo->si_addr));
        Store<uint32_t>(event_ + kEventFaultAccess, access);
      }
      return kFault;
    case SIGILL:
      if (IsBypassedUretprobe(siginfo, g)) {
        user->orig_rax = kSyscallUretprobe;
        user->rax = kSyscallUretprobe;
        return kSyscall;
      }
      return kSignal;
    case STUB_INTERRUPT_SIGNAL:
      if (siginfo->si_code == SI_TKILL && siginfo->si_pid == getpid()) return kInterrupted;
      return kSignal;
    default:
      return kSignal;
  }
}

}  // namespace systrap
