// vCPU setup, the vCPU thread, and the hand-off of runs between it and the JavaScript thread.
#include "vcpu.h"

#include "kvm_ioctls.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <linux/futex.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace tsvisor_kvm {

namespace {

// Sent to a vCPU thread to end KVM_RUN with EINTR. The handler does nothing: the interrupted
// system call is the point.
int KickSignal() { return SIGRTMIN + 5; }

void InstallKickHandler() {
  static bool installed = false;
  if (installed) return;
  struct sigaction action = {};
  action.sa_handler = [](int) {};
  sigemptyset(&action.sa_mask);
  if (sigaction(KickSignal(), &action, nullptr) < 0) ThrowErrno("sigaction for the vCPU kick signal");
  installed = true;
}

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void FutexWake(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

int64_t NowNs() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t(now.tv_sec) * 1000000000 + now.tv_nsec;
}

// How long the vCPU thread spins for the next run before it sleeps on the futex. A system call
// handled by the sentry usually takes less than this, and a sleeping thread costs a futex wake-up.
constexpr int64_t kThreadSpinNs = 100000;

extern "C" const uint8_t tsvisor_guest_boot_xsave[], tsvisor_guest_boot[];
extern "C" const uint8_t tsvisor_guest_resume_flush[], tsvisor_guest_resume_fxrstor[], tsvisor_guest_resume[];
extern "C" const uint8_t tsvisor_guest_resume_flush_xrstor[], tsvisor_guest_resume_xrstor[], tsvisor_guest_resume_end[];
extern "C" const uint8_t tsvisor_guest_syscall_entry[], tsvisor_guest_syscall_entry_end[];
extern "C" const uint8_t tsvisor_guest_syscall_entry_xsave[], tsvisor_guest_syscall_entry_xsave_end[];

// int 0x80, and the #GP error code its DPL-0 IDT gate causes: gate index 0x80, IDT bit set.
constexpr uint8_t kInt80[2] = {0xcd, 0x80};
constexpr uint64_t kInt80GpErrorCode = 0x80 << 3 | 2;

// Vectors for which the CPU pushes an error code: 8, 10-14, 17, 21, 29, 30.
constexpr uint32_t kVectorsWithErrorCode = 1u << 8 | 0x7c00u | 1u << 17 | 1u << 21 | 1u << 29 | 1u << 30;

bool Canonical(uint64_t address) {
  return int64_t(address << 16) >> 16 == int64_t(address);
}

uint64_t SegmentDescriptor(uint64_t access, uint64_t flags) {
  // Base 0, limit 0xfffff with 4 KiB granularity; long-mode code and data ignore both.
  return 0xffff | (access << 40) | (uint64_t(0xf | flags << 4) << 48);
}

void SetSegment(struct kvm_segment* segment, uint16_t selector, uint8_t type, bool code) {
  segment->base = 0;
  segment->limit = 0xffffffff;
  segment->selector = selector;
  segment->type = type;
  segment->present = 1;
  segment->dpl = 0;
  segment->db = code ? 0 : 1;
  segment->s = 1;
  segment->l = code ? 1 : 0;
  segment->g = 1;
  segment->unusable = 0;
}

uint32_t HostMxcsrMask() {
  alignas(16) uint8_t area[512] = {};
  asm volatile("fxsave64 %0" : "=m"(area));
  uint32_t mask;
  memcpy(&mask, area + 28, 4);
  return mask == 0 ? 0xffbf : mask;
}

// These two copy the general registers other than RSP between the Registers layout and struct
// kvm_regs. The callers set RIP, RSP, RFLAGS, orig_rax and the segment state themselves because
// those depend on how the guest enters or leaves ring 3.
void LoadGeneralRegisters(const uint64_t* gpr, struct kvm_regs& r) {
  r.rax = gpr[ST_RAX / 8];
  r.rbx = gpr[ST_RBX / 8];
  r.rcx = gpr[ST_RCX / 8];
  r.rdx = gpr[ST_RDX / 8];
  r.rsi = gpr[ST_RSI / 8];
  r.rdi = gpr[ST_RDI / 8];
  r.rbp = gpr[ST_RBP / 8];
  r.r8 = gpr[ST_R8 / 8];
  r.r9 = gpr[ST_R9 / 8];
  r.r10 = gpr[ST_R10 / 8];
  r.r11 = gpr[ST_R11 / 8];
  r.r12 = gpr[ST_R12 / 8];
  r.r13 = gpr[ST_R13 / 8];
  r.r14 = gpr[ST_R14 / 8];
  r.r15 = gpr[ST_R15 / 8];
}

void StoreGeneralRegisters(const struct kvm_regs& r, uint64_t* gpr) {
  gpr[ST_RAX / 8] = r.rax;
  gpr[ST_RBX / 8] = r.rbx;
  gpr[ST_RCX / 8] = r.rcx;
  gpr[ST_RDX / 8] = r.rdx;
  gpr[ST_RSI / 8] = r.rsi;
  gpr[ST_RDI / 8] = r.rdi;
  gpr[ST_RBP / 8] = r.rbp;
  gpr[ST_R8 / 8] = r.r8;
  gpr[ST_R9 / 8] = r.r9;
  gpr[ST_R10 / 8] = r.r10;
  gpr[ST_R11 / 8] = r.r11;
  gpr[ST_R12 / 8] = r.r12;
  gpr[ST_R13 / 8] = r.r13;
  gpr[ST_R14 / 8] = r.r14;
  gpr[ST_R15 / 8] = r.r15;
}

}  // namespace

Vcpu::Vcpu(Vm* vm, std::function<void()> notify) : vm_(vm), notify_(std::move(notify)) {
  InstallKickHandler();
  index_ = vm_->AllocVcpuIndex();
  try {
    fd_ = ioctl(vm_->vm_fd(), KVM_CREATE_VCPU, vm_->NextVcpuId());
    if (fd_ < 0) ThrowErrno("KVM_CREATE_VCPU");
    void* run = mmap(nullptr, vm_->run_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (run == MAP_FAILED) ThrowErrno("mmap of the vCPU run structure");
    run_ = static_cast<struct kvm_run*>(run);
    if (ioctl(fd_, kKvmSetCpuid2, vm_->cpuid()) < 0) ThrowErrno("KVM_SET_CPUID2");
    mxcsr_mask_ = HostMxcsrMask();
    SetUpBlock();
    SetUpRegisters();
    Boot();

    if (pthread_create(&thread_, nullptr, [](void* self) -> void* {
          static_cast<Vcpu*>(self)->ThreadMain();
          return nullptr;
        }, this) != 0) {
      Throw("pthread_create for a vCPU thread failed");
    }
    thread_started_ = true;
  } catch (...) {
    if (run_ != nullptr) munmap(run_, vm_->run_size());
    if (fd_ >= 0) close(fd_);
    vm_->FreeVcpuIndex(index_);
    throw;
  }
}

Vcpu::~Vcpu() {
  if (thread_started_) {
    phase_.store(kQuit);
    Interrupt();
    FutexWake(&phase_);
    pthread_join(thread_, nullptr);
  }
  munmap(run_, vm_->run_size());
  close(fd_);
  vm_->FreeVcpuIndex(index_);
}

void Vcpu::Park() {
  uint32_t phase = phase_.load();
  if (phase == kRequested || phase == kAsync) Interrupt();
  // An interrupted run ends within a few guest instructions, so a yielding wait is short.
  while (phase == kRequested || phase == kAsync || busy_.load()) {
    sched_yield();
    phase = phase_.load();
  }
}

// JS thread, while the vCPU thread is parked: it only waits for phase_ to leave kIdle.
void Vcpu::Reset(std::function<void()> notify) {
  notify_ = std::move(notify);
  phase_.store(kIdle);
  interrupt_pending_.store(false);
  __atomic_store_n(&run_->immediate_exit, 0, __ATOMIC_SEQ_CST);
  // Registers the last run left marked dirty would overwrite those set below on the next KVM_RUN.
  run_->kvm_dirty_regs = 0;
  outcome_ = kOutcomeFailed;
  error_.clear();
  exit_error_ = 0;
  exit_cr2_ = 0;

  as_ = nullptr;
  last_as_id_ = 0;  // address space ids start at 1, so the first run flushes the TLB
  last_generation_ = 0;
  loaded_fs_base_ = 0;
  loaded_gs_base_ = 0;
  fp_loaded_ = false;
  kernel_mode_ = true;

  ClearEvents();
  SetUpBlock();
  SetUpRegisters();
  Boot();
}

// Drops exceptions, interrupts and NMIs a failed run may have left pending or injected.
void Vcpu::ClearEvents() {
  struct kvm_vcpu_events events = {};
  if (ioctl(fd_, KVM_SET_VCPU_EVENTS, &events) < 0) ThrowErrno("KVM_SET_VCPU_EVENTS");
}

void Vcpu::SetUpBlock() {
  block_gpa_ = GUEST_VCPU_BLOCKS_GPA + uint64_t(index_) * VCPU_BLOCK_SIZE;
  block_ = vm_->KernelHost(block_gpa_);
  memset(block_, 0, VCPU_BLOCK_SIZE);
  stack_top_va_ = Vm::KernelVa(block_gpa_ + VCPU_STACK_TOP);

  auto* gdt = reinterpret_cast<uint64_t*>(block_ + VCPU_GDT_OFFSET);
  gdt[SEL_KERNEL_CS / 8] = SegmentDescriptor(0x9b, 0xa);
  gdt[SEL_KERNEL_DS / 8] = SegmentDescriptor(0x93, 0xc);
  gdt[SEL_USER32_CS / 8] = SegmentDescriptor(0xfb, 0xc);
  gdt[SEL_USER_DS / 8] = SegmentDescriptor(0xf3, 0xc);
  gdt[SEL_USER_CS / 8] = SegmentDescriptor(0xfb, 0xa);
  uint64_t tss_va = Vm::KernelVa(block_gpa_ + VCPU_TSS_OFFSET);
  gdt[SEL_TSS / 8] = 0x67 | (tss_va & 0xffffff) << 16 | uint64_t(0x8b) << 40 | ((tss_va >> 24) & 0xff) << 56;
  gdt[SEL_TSS / 8 + 1] = tss_va >> 32;

  // This vCPU's SYSCALL entry: the guest kernel's template, which addresses the block RIP-relatively.
  const uint8_t* entry = vm_->features().xsave ? tsvisor_guest_syscall_entry_xsave : tsvisor_guest_syscall_entry;
  const uint8_t* entry_end = vm_->features().xsave ? tsvisor_guest_syscall_entry_xsave_end : tsvisor_guest_syscall_entry_end;
  memcpy(block_ + VCPU_SYSCALL_ENTRY_OFFSET, entry, entry_end - entry);
  syscall_entry_va_ = Vm::KernelVa(block_gpa_ + VCPU_SYSCALL_ENTRY_OFFSET);

  // 64-bit TSS: RSP0 at offset 4, and an I/O bitmap offset past the limit, so ring 3 has no ports.
  uint8_t* tss = block_ + VCPU_TSS_OFFSET;
  memcpy(tss + 4, &stack_top_va_, 8);
  uint16_t iomap = 0x68;
  memcpy(tss + 102, &iomap, 2);
}

void Vcpu::SetUpRegisters() {
  struct kvm_sregs sregs;
  if (ioctl(fd_, KVM_GET_SREGS, &sregs) < 0) ThrowErrno("KVM_GET_SREGS");
  SetSegment(&sregs.cs, SEL_KERNEL_CS, 0xb, true);
  SetSegment(&sregs.ds, SEL_KERNEL_DS, 0x3, false);
  sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
  sregs.tr.base = Vm::KernelVa(block_gpa_ + VCPU_TSS_OFFSET);
  sregs.tr.limit = 0x67;
  sregs.tr.selector = SEL_TSS;
  sregs.tr.type = 0xb;
  sregs.tr.present = 1;
  sregs.tr.s = 0;
  sregs.tr.unusable = 0;
  sregs.gdt.base = Vm::KernelVa(block_gpa_ + VCPU_GDT_OFFSET);
  sregs.gdt.limit = GDT_ENTRIES * 8 - 1;
  sregs.idt.base = Vm::KernelVa(GUEST_IDT_GPA);
  sregs.idt.limit = 256 * 16 - 1;

  // CR0: PE, MP, ET, NE, WP, PG. CR4: PAE, OSFXSR, OSXMMEXCPT, and OSXSAVE and FSGSBASE where
  // offered. EFER: SCE, LME, LMA, NXE.
  sregs.cr0 = 0x80010033;
  sregs.cr4 = 0x20 | 0x200 | 0x400;
  if (vm_->features().xsave) sregs.cr4 |= 0x40000;
  if (vm_->features().fsgsbase) sregs.cr4 |= 0x10000;
  sregs.cr3 = GUEST_BOOT_PML4_GPA;
  // A reused vCPU still contains the last fault address and possibly a pending interrupt.
  sregs.cr2 = 0;
  memset(sregs.interrupt_bitmap, 0, sizeof sregs.interrupt_bitmap);
  sregs.efer = 0x1 | 0x100 | 0x400 | 0x800;
  if (ioctl(fd_, KVM_SET_SREGS, &sregs) < 0) ThrowErrno("KVM_SET_SREGS");
  if (ioctl(fd_, KVM_GET_SREGS, &kernel_sregs_) < 0) ThrowErrno("KVM_GET_SREGS");
  loaded_cr3_ = kernel_sregs_.cr3;

  // SYSCALL targets: LSTAR is the vCPU's entry (see DecodeException), STAR contains the selectors,
  // and SFMASK clears IF, TF, DF and AC on entry.
  struct {
    uint32_t nmsrs;
    uint32_t pad;
    struct kvm_msr_entry entries[3];
  } msrs = {};
  msrs.nmsrs = 3;
  msrs.entries[0].index = 0xc0000082;
  msrs.entries[0].data = syscall_entry_va_;
  msrs.entries[1].index = 0xc0000081;
  msrs.entries[1].data = uint64_t(SEL_USER32_CS - 3) << 48 | uint64_t(SEL_KERNEL_CS) << 32;
  msrs.entries[2].index = 0xc0000084;
  msrs.entries[2].data = 0x40700;
  if (ioctl(fd_, kKvmSetMsrs, &msrs) != 3) ThrowErrno("KVM_SET_MSRS");

  // Every exit stores the registers and special registers into struct kvm_run, which saves the
  // KVM_GET_REGS and KVM_GET_SREGS calls.
  run_->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
}

// Runs the guest's boot code synchronously, so that a guest that cannot start is reported by the
// constructor (and therefore by newContext and probe).
void Vcpu::Boot() {
  struct kvm_regs regs = {};
  regs.rsp = stack_top_va_;
  regs.rflags = 2;
  if (vm_->features().xsave) {
    regs.rip = Vm::GuestVa(tsvisor_guest_boot_xsave);
    regs.rcx = 0;
    regs.rax = vm_->features().xsave_mask & 0xffffffff;
    regs.rdx = vm_->features().xsave_mask >> 32;
  } else {
    regs.rip = Vm::GuestVa(tsvisor_guest_boot);
  }
  if (ioctl(fd_, KVM_SET_REGS, &regs) < 0) ThrowErrno("KVM_SET_REGS");
  if (RunGuest() != kOutcomePort) Throw("the guest kernel did not start: " + error_);
  if (run_->io.port != PORT_READY) {
    Throw("the guest kernel did not start: it exited through port " + std::to_string(run_->io.port) +
          " at rip " + std::to_string(run_->s.regs.regs.rip));
  }
}

void Vcpu::ThreadMain() {
  sigset_t all_but_kick;
  sigfillset(&all_but_kick);
  sigdelset(&all_but_kick, KickSignal());
  pthread_sigmask(SIG_SETMASK, &all_but_kick, nullptr);

  for (;;) {
    uint32_t phase = phase_.load(std::memory_order_acquire);
    int64_t deadline = NowNs() + kThreadSpinNs;
    // The JavaScript thread may already have given up spinning (kAsync) before this thread saw
    // the request.
    while ((phase == kIdle || phase == kDone) && NowNs() < deadline) {
      __builtin_ia32_pause();
      phase = phase_.load(std::memory_order_acquire);
    }
    while (phase == kIdle || phase == kDone) {
      sleeping_.store(true);
      FutexWait(&phase_, phase);
      sleeping_.store(false);
      phase = phase_.load(std::memory_order_acquire);
    }
    if (phase == kQuit) return;

    busy_.store(true);
    outcome_ = RunGuest();

    // kRequested or kAsync become kDone; kQuit stays, and ends the thread.
    uint32_t previous = phase_.load();
    while (previous != kQuit && !phase_.compare_exchange_weak(previous, kDone)) {
    }
    if (previous == kQuit) return;
    if (previous == kAsync) notify_();
    busy_.store(false);
  }
}

// Runs the vCPU until it leaves through an I/O port or an interrupt stops it. vCPU thread (and the
// constructor, before the thread exists).
Vcpu::Outcome Vcpu::RunGuest() {
  for (;;) {
    in_guest_.store(true);
    int ret = ioctl(fd_, KVM_RUN, 0);
    int saved_errno = errno;
    in_guest_.store(false);

    bool kicked = ret < 0 && (saved_errno == EINTR || saved_errno == EAGAIN);
    if (ret < 0 && !kicked) {
      error_ = std::string("KVM_RUN failed: ") + strerror(saved_errno);
      return kOutcomeFailed;
    }
    if (kicked || run_->exit_reason == KVM_EXIT_INTR) {
      __atomic_store_n(&run_->immediate_exit, 0, __ATOMIC_SEQ_CST);
      if (phase_.load() == kQuit) {
        error_ = "the context was released during a switch";
        return kOutcomeFailed;
      }
      if ((run_->s.regs.sregs.cs.selector & 3) == 3) {
        // The application's FPU state is only in the vCPU.
        struct kvm_xsave xsave;
        if (ioctl(fd_, kKvmGetXsave, &xsave) < 0) {
          error_ = std::string("KVM_GET_XSAVE failed: ") + strerror(errno);
          return kOutcomeFailed;
        }
        memcpy(block_ + VCPU_XSAVE_OFFSET, xsave.region, vm_->features().xsave_size);
        return kOutcomeInterruptedUser;
      }
      uint64_t rip = run_->s.regs.regs.rip;
      if (rip >= Vm::GuestVa(tsvisor_guest_resume_flush) && rip < Vm::GuestVa(tsvisor_guest_resume_end)) {
        return kOutcomeInterruptedBeforeEntry;
      }
      // Inside an exception stub, one or two instructions before its OUT: let it finish.
      continue;
    }

    switch (run_->exit_reason) {
      case KVM_EXIT_IO:
        if (run_->io.port == PORT_READY || run_->io.port == PORT_SYSCALL ||
            (run_->io.port >= PORT_VECTOR_BASE && run_->io.port <= PORT_VECTOR_BASE + 32)) {
          return kOutcomePort;
        }
        error_ = "guest wrote to unexpected I/O port " + std::to_string(run_->io.port);
        return kOutcomeFailed;
      case KVM_EXIT_SHUTDOWN:
        error_ = "the guest shut down (triple fault)";
        return kOutcomeFailed;
      case KVM_EXIT_FAIL_ENTRY:
        error_ = "KVM could not enter the guest, hardware reason " +
                 std::to_string(run_->fail_entry.hardware_entry_failure_reason);
        return kOutcomeFailed;
      case KVM_EXIT_INTERNAL_ERROR:
        error_ = "KVM internal error, suberror " + std::to_string(run_->internal.suberror);
        return kOutcomeFailed;
      case KVM_EXIT_MMIO:
        error_ = "guest accessed guest-physical address " + std::to_string(run_->mmio.phys_addr) + " outside memory";
        return kOutcomeFailed;
      default:
        error_ = "unexpected KVM exit reason " + std::to_string(run_->exit_reason);
        return kOutcomeFailed;
    }
  }
}

int Vcpu::Run(AddressSpace* as, uint64_t as_id, uint8_t* regs, int64_t spin_ns) {
  if (phase_.load() != kIdle) Throw("switch called while another switch of this context is in progress");

  if (interrupt_pending_.exchange(false)) {
    __atomic_store_n(&run_->immediate_exit, 0, __ATOMIC_SEQ_CST);
    return EXIT_INTERRUPTED;
  }

  uint64_t gpr[ST_GPR_SIZE / 8];
  memcpy(gpr, regs, ST_GPR_SIZE);
  uint64_t rip = gpr[ST_RIP / 8], fs_base = gpr[ST_FS_BASE / 8], gs_base = gpr[ST_GS_BASE / 8];
  // Values IRETQ or the base registers would fault on in the guest kernel are a #GP in the application.
  if (!Canonical(rip) || !Canonical(fs_base) || !Canonical(gs_base)) {
    exit_error_ = 0;
    exit_cr2_ = 0;
    return 13;
  }

  // The FPU state is restored only when it differs from what the vCPU holds.
  const GuestFeatures& features = vm_->features();
  uint8_t* fp = block_ + VCPU_XSAVE_OFFSET;
  bool restore_fp = !fp_loaded_ || memcmp(fp, regs + 256, features.xsave_size) != 0;
  if (restore_fp) {
    memcpy(fp, regs + 256, features.xsave_size);
    // XRSTOR and FXRSTOR fault on reserved MXCSR bits, unknown components and a non-zero XCOMP_BV.
    uint32_t mxcsr;
    memcpy(&mxcsr, fp + 24, 4);
    mxcsr &= mxcsr_mask_;
    memcpy(fp + 24, &mxcsr, 4);
    if (features.xsave) {
      uint64_t xstate_bv;
      memcpy(&xstate_bv, fp + 512, 8);
      xstate_bv &= features.xsave_mask;
      memset(fp + 512, 0, 64);
      memcpy(fp + 512, &xstate_bv, 8);
    }
  }

  // The IRETQ frame. Selectors are fixed, and the flags are limited to those ring 3 may set
  // (CF PF AF ZF SF TF DF OF AC ID) with interrupts enabled.
  auto* frame = reinterpret_cast<uint64_t*>(block_ + VCPU_STACK_TOP - FRAME_SIZE);
  frame[0] = rip;
  frame[1] = SEL_USER_CS;
  frame[2] = (gpr[ST_EFLAGS / 8] & 0x250dd5) | 0x202;
  frame[3] = gpr[ST_RSP / 8];
  frame[4] = SEL_USER_DS;

  bool flush = as_id != last_as_id_ || as->generation() != last_generation_;
  last_as_id_ = as_id;
  last_generation_ = as->generation();
  as_ = as;

  struct kvm_regs& r = run_->s.regs.regs;
  LoadGeneralRegisters(gpr, r);
  r.rsp = stack_top_va_ - FRAME_SIZE;
  r.rflags = 2;
  if (flush) {
    r.rip = Vm::GuestVa(features.xsave ? tsvisor_guest_resume_flush_xrstor : tsvisor_guest_resume_flush);
  } else if (restore_fp) {
    r.rip = Vm::GuestVa(features.xsave ? tsvisor_guest_resume_xrstor : tsvisor_guest_resume_fxrstor);
  } else {
    r.rip = Vm::GuestVa(tsvisor_guest_resume);
  }
  run_->kvm_dirty_regs = KVM_SYNC_X86_REGS;

  // CR3 and the segment bases go through the special registers, which cost more to load, so only
  // when they change (or when an interrupt left the vCPU in ring 3).
  uint64_t cr3 = as->root();
  if (!kernel_mode_ || cr3 != loaded_cr3_ || fs_base != loaded_fs_base_ || gs_base != loaded_gs_base_) {
    struct kvm_sregs& sregs = run_->s.regs.sregs;
    sregs = kernel_sregs_;
    sregs.cr3 = cr3;
    sregs.fs.base = fs_base;
    sregs.gs.base = gs_base;
    run_->kvm_dirty_regs |= KVM_SYNC_X86_SREGS;
    loaded_cr3_ = cr3;
    loaded_fs_base_ = fs_base;
    loaded_gs_base_ = gs_base;
    kernel_mode_ = true;
  }
  fp_loaded_ = true;

  phase_.store(kRequested);
  if (sleeping_.load()) FutexWake(&phase_);
  return Wait(regs, spin_ns);
}

int Vcpu::Wait(uint8_t* regs, int64_t spin_ns) {
  int64_t deadline = NowNs() + spin_ns;
  for (;;) {
    if (phase_.load(std::memory_order_acquire) == kDone) return Decode(regs);
    if (NowNs() >= deadline) break;
    __builtin_ia32_pause();
  }
  uint32_t expected = kRequested;
  if (phase_.compare_exchange_strong(expected, kAsync)) return kPending;
  return Decode(regs);
}

int Vcpu::Finish(uint8_t* regs) {
  if (phase_.load(std::memory_order_acquire) != kDone) Throw("no switch of this context has finished");
  return Decode(regs);
}

// Copies the decoded general registers and the FPU state, which the exit left in the vCPU's XSAVE
// area, into the application's Registers layout.
void Vcpu::StoreApplicationState(uint8_t* regs, const uint64_t* gpr) {
  memcpy(regs, gpr, ST_GPR_SIZE);
  memcpy(regs + 256, block_ + VCPU_XSAVE_OFFSET, vm_->features().xsave_size);
}

// Turns the vCPU thread's outcome into an exit vector and the application's registers. JS thread.
int Vcpu::Decode(uint8_t* regs) {
  int vector = kFailed;
  switch (outcome_) {
    case kOutcomeFailed:
      vector = kFailed;
      break;
    case kOutcomeInterruptedBeforeEntry:
      // The registers never reached ring 3, so `regs` is already the application's state. The
      // resume code may have restored the FPU state or not.
      fp_loaded_ = false;
      interrupt_pending_.store(false);
      vector = EXIT_INTERRUPTED;
      break;
    case kOutcomeInterruptedUser: {
      const struct kvm_regs& r = run_->s.regs.regs;
      const struct kvm_sregs& sregs = run_->s.regs.sregs;
      uint64_t gpr[ST_GPR_SIZE / 8];
      memcpy(gpr, regs, ST_GPR_SIZE);
      StoreGeneralRegisters(r, gpr);
      gpr[ST_ORIG_RAX / 8] = uint64_t(-1);
      gpr[ST_RIP / 8] = r.rip;
      gpr[ST_EFLAGS / 8] = r.rflags;
      gpr[ST_RSP / 8] = r.rsp;
      gpr[ST_CS / 8] = SEL_USER_CS;
      gpr[ST_SS / 8] = SEL_USER_DS;
      gpr[ST_FS_BASE / 8] = sregs.fs.base;
      gpr[ST_GS_BASE / 8] = sregs.gs.base;
      StoreApplicationState(regs, gpr);
      kernel_mode_ = false;
      fp_loaded_ = true;
      loaded_cr3_ = sregs.cr3;
      interrupt_pending_.store(false);
      vector = EXIT_INTERRUPTED;
      break;
    }
    case kOutcomePort:
      vector = DecodeException(regs);
      break;
  }
  phase_.store(kIdle, std::memory_order_release);
  return vector;
}

int Vcpu::DecodeException(uint8_t* regs) {
  const struct kvm_regs& r = run_->s.regs.regs;
  const struct kvm_sregs& sregs = run_->s.regs.sregs;
  if (run_->io.port == PORT_SYSCALL) return DecodeSyscallEntry(regs);

  int vector = run_->io.port - PORT_VECTOR_BASE;
  bool has_error = vector < 32 && ((kVectorsWithErrorCode >> vector) & 1);
  uint64_t expected_rsp = stack_top_va_ - FRAME_SIZE - (has_error ? 8 : 0);
  const auto* frame = reinterpret_cast<const uint64_t*>(block_ + VCPU_STACK_TOP - FRAME_SIZE);

  // An exception in the guest kernel pushes its frame below the current stack pointer instead.
  if (r.rsp != expected_rsp || (frame[1] & 3) != 3) {
    uint64_t offset = r.rsp - Vm::KernelVa(block_gpa_);
    const uint64_t* inner = offset < VCPU_BLOCK_SIZE - 16 ? reinterpret_cast<const uint64_t*>(block_ + offset) : nullptr;
    char message[200];
    snprintf(message, sizeof message, "guest kernel fault: vector %d, error code %#llx, rip %#llx, cr2 %#llx", vector,
             inner && has_error ? (unsigned long long)inner[0] : 0ULL,
             inner ? (unsigned long long)inner[has_error ? 1 : 0] : 0ULL, (unsigned long long)sregs.cr2);
    error_ = message;
    return kFailed;
  }

  uint64_t gpr[ST_GPR_SIZE / 8];
  memcpy(gpr, regs, ST_GPR_SIZE);
  StoreGeneralRegisters(r, gpr);
  gpr[ST_ORIG_RAX / 8] = uint64_t(-1);
  gpr[ST_RIP / 8] = frame[0];
  gpr[ST_CS / 8] = frame[1];
  gpr[ST_EFLAGS / 8] = frame[2];
  gpr[ST_RSP / 8] = frame[3];
  gpr[ST_SS / 8] = frame[4];
  gpr[ST_FS_BASE / 8] = sregs.fs.base;
  gpr[ST_GS_BASE / 8] = sregs.gs.base;
  loaded_fs_base_ = sregs.fs.base;
  loaded_gs_base_ = sregs.gs.base;
  exit_error_ = has_error ? *(frame - 1) : 0;
  exit_cr2_ = sregs.cr2;

  // Besides the direct entry (DecodeSyscallEntry), a system call arrives as an exception, reported
  // as if SYSCALL had run natively: RCX contains the return address, R11 the flags, and RIP points
  // past the instruction.
  //  - Nested KVM on kvm_pvm jumps to LSTAR while staying in ring 3. LSTAR is a supervisor-only
  //    address, so the fetch raises #PF with RIP = LSTAR after SYSCALL has stored the return
  //    address in RCX and the flags in R11.
  //  - A guest whose EFER.SCE is clear raises #UD at the instruction (0f 05). This guest sets SCE,
  //    so this case is a fallback only.
  if (vector == 14 && frame[0] == syscall_entry_va_) {
    gpr[ST_RIP / 8] = r.rcx;
    gpr[ST_EFLAGS / 8] = r.r11;
    gpr[ST_ORIG_RAX / 8] = r.rax;
    vector = EXIT_SYSCALL;
  } else if (vector == 6) {
    uint8_t bytes[2];
    if (as_->Read(frame[0], bytes, 2) && bytes[0] == 0x0f && bytes[1] == 0x05) {
      gpr[ST_RIP / 8] = frame[0] + 2;
      gpr[ST_RCX / 8] = frame[0] + 2;
      gpr[ST_R11 / 8] = frame[2];
      gpr[ST_ORIG_RAX / 8] = r.rax;
      vector = EXIT_SYSCALL;
    } else if (as_->Read(frame[0], bytes, 2) && bytes[0] == kInt80[0] && bytes[1] == kInt80[1]) {
      // Nested KVM on kvm_pvm raises #UD at int 0x80 from ring 3 instead of consulting the IDT
      // (observed on Linux 6.18), so the instruction bytes are what identify it.
      gpr[ST_RIP / 8] = frame[0] + sizeof kInt80;
      vector = EXIT_COMPAT_SYSCALL;
    }
  } else if (vector == 13 && exit_error_ == kInt80GpErrorCode) {
    // Real hardware: the IDT gate of vector 0x80 has DPL 0, so int 0x80 from ring 3 raises #GP
    // with the gate's index in the error code, and RIP at the instruction.
    // NOTE: only the kvm_pvm path above has run in tests so far; this one follows the SDM.
    gpr[ST_RIP / 8] = frame[0] + sizeof kInt80;
    vector = EXIT_COMPAT_SYSCALL;
  }

  StoreApplicationState(regs, gpr);
  return vector;
}

// SYSCALL entered ring 0 through this vCPU's entry (real hardware): the entry saved the stack
// pointer in the block and switched to the top of the vCPU's stack.
int Vcpu::DecodeSyscallEntry(uint8_t* regs) {
  const struct kvm_regs& r = run_->s.regs.regs;
  const struct kvm_sregs& sregs = run_->s.regs.sregs;
  if (r.rsp != stack_top_va_ - FRAME_SIZE) {
    error_ = "guest kernel fault: the SYSCALL entry exited with an unexpected stack pointer";
    return kFailed;
  }
  uint64_t gpr[ST_GPR_SIZE / 8];
  memcpy(gpr, regs, ST_GPR_SIZE);
  StoreGeneralRegisters(r, gpr);
  gpr[ST_ORIG_RAX / 8] = r.rax;
  gpr[ST_RIP / 8] = r.rcx;
  gpr[ST_CS / 8] = SEL_USER_CS;
  gpr[ST_EFLAGS / 8] = r.r11;
  memcpy(&gpr[ST_RSP / 8], block_ + VCPU_SYSCALL_RSP_OFFSET, 8);
  gpr[ST_SS / 8] = SEL_USER_DS;
  gpr[ST_FS_BASE / 8] = sregs.fs.base;
  gpr[ST_GS_BASE / 8] = sregs.gs.base;
  loaded_fs_base_ = sregs.fs.base;
  loaded_gs_base_ = sregs.gs.base;
  exit_error_ = 0;
  exit_cr2_ = 0;
  StoreApplicationState(regs, gpr);
  return EXIT_SYSCALL;
}

bool Vcpu::TakeInterrupt() {
  if (!interrupt_pending_.exchange(false)) return false;
  __atomic_store_n(&run_->immediate_exit, 0, __ATOMIC_SEQ_CST);
  return true;
}

void Vcpu::Interrupt() {
  interrupt_pending_.store(true);
  __atomic_store_n(&run_->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (thread_started_ && in_guest_.load()) pthread_kill(thread_, KickSignal());
}

}  // namespace tsvisor_kvm
