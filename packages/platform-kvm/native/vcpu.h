// A vCPU and the native thread that runs it.
//
// The JavaScript thread never calls KVM_RUN. It loads the application's registers into the vCPU's
// synchronized registers (struct kvm_run), sets phase_ to kRequested and spins briefly while the vCPU
// thread runs the guest. A quick exit is picked up by that spin; otherwise the JavaScript thread
// moves phase_ to kAsync and the vCPU thread calls `notify` (a thread-safe function) once the exit
// arrives. Decoding an exit into the Registers layout happens on the JavaScript thread.
//
// phase_ transitions: kIdle -> kRequested (JS); kRequested -> kAsync (JS, when the spin ends);
// kRequested or kAsync -> kDone (vCPU thread); kDone -> kIdle (JS, when it decodes the exit).
// Whoever owns the phase owns struct kvm_run and the vCPU block.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <pthread.h>
#include <string>

#include "address_space.h"
#include "vm.h"

namespace tsvisor_kvm {

class Vcpu {
 public:
  // Exit vector of a run that failed on the host; `error()` describes the failure.
  static constexpr int kFailed = -2;
  // Returned by Run when the exit has not arrived yet.
  static constexpr int kPending = -1;

  Vcpu(Vm* vm, std::function<void()> notify);
  ~Vcpu();
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  // Loads `regs` (the Registers layout) and runs the guest in `as`. Returns an exit vector
  // (0-31, EXIT_SYSCALL, EXIT_INTERRUPTED or EXIT_COMPAT_SYSCALL), kFailed, or kPending; after kPending, `notify` is
  // called from the vCPU thread and Finish collects the exit.
  int Run(AddressSpace* as, uint64_t as_id, uint8_t* regs, int64_t spin_ns);
  int Finish(uint8_t* regs);

  // Makes the current or next run return EXIT_INTERRUPTED. Any thread.
  void Interrupt();

  // Clears an interrupt that arrived too late to end the last run, and reports whether there was
  // one, so that a pool can hand it to the context instead of the vCPU's next user. JS thread,
  // between runs.
  bool TakeInterrupt();

  // Ends a run in progress and waits until the vCPU thread is idle and has returned from `notify`,
  // so the caller may free what `notify` refers to. The vCPU stays usable through Reset.
  void Park();

  // Prepares a parked vCPU for a new context, with `notify` in place of the old callback. Its
  // registers, FPU state, CR3, segment bases, pending events, interrupt and kick flags, and what
  // this object caches about them, become those of a newly created vCPU.
  void Reset(std::function<void()> notify);

  uint64_t exit_error() const { return exit_error_; }
  uint64_t exit_cr2() const { return exit_cr2_; }
  const std::string& error() const { return error_; }

 private:
  enum Phase : uint32_t { kIdle, kRequested, kAsync, kDone, kQuit };
  // How a run ended, as seen by the vCPU thread; Decode turns it into an exit vector.
  enum Outcome { kOutcomeFailed, kOutcomePort, kOutcomeInterruptedUser, kOutcomeInterruptedBeforeEntry };

  void SetUpBlock();
  void ClearEvents();
  void SetUpRegisters();
  void Boot();
  void ThreadMain();
  Outcome RunGuest();
  int Wait(uint8_t* regs, int64_t spin_ns);
  int Decode(uint8_t* regs);
  int DecodeException(uint8_t* regs);
  int DecodeSyscallEntry(uint8_t* regs);
  void StoreApplicationState(uint8_t* regs, const uint64_t* gpr);

  Vm* vm_;
  std::function<void()> notify_;
  int index_;  // block number; the KVM vCPU id is a different number (Vm::NextVcpuId)
  int fd_ = -1;
  struct kvm_run* run_ = nullptr;
  uint8_t* block_ = nullptr;
  uint64_t block_gpa_ = 0;
  uint64_t stack_top_va_ = 0;
  uint64_t syscall_entry_va_ = 0;
  struct kvm_sregs kernel_sregs_ = {};
  pthread_t thread_ = {};
  bool thread_started_ = false;
  std::atomic<uint32_t> phase_{kIdle};
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> in_guest_{false};
  std::atomic<bool> interrupt_pending_{false};
  // Set by the vCPU thread from taking a request until it has returned from `notify_`.
  std::atomic<bool> busy_{false};
  Outcome outcome_ = kOutcomeFailed;
  std::string error_;
  uint64_t exit_error_ = 0;
  uint64_t exit_cr2_ = 0;

  // What the vCPU holds, so a run loads only what changed.
  AddressSpace* as_ = nullptr;
  uint64_t last_as_id_ = 0;
  uint64_t last_generation_ = 0;
  uint64_t loaded_cr3_ = 0;
  uint64_t loaded_fs_base_ = 0;
  uint64_t loaded_gs_base_ = 0;
  bool fp_loaded_ = false;   // the vCPU's FPU state equals the XSAVE area
  bool kernel_mode_ = true;  // false after an interrupt stopped the vCPU in ring 3
  uint32_t mxcsr_mask_ = 0xffbf;
};

}  // namespace tsvisor_kvm
