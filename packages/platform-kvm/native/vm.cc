// VM creation, guest kernel memory, the page-table pool and memory-file slots.
#include "vm.h"

#include "kvm_ioctls.h"
#include "vcpu.h"

#include <cerrno>
#include <cpuid.h>
#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tsvisor_kvm {

extern "C" const uint8_t tsvisor_guest_start[], tsvisor_guest_end[];
extern "C" const uint8_t tsvisor_guest_fxsave_stubs[], tsvisor_guest_xsave_stubs[];

void ThrowErrno(const std::string& call) {
  int error = errno;
  throw KvmError{call + " failed: " + strerror(error) + " (errno " + std::to_string(error) + ")"};
}

void Throw(const std::string& message) { throw KvmError{message}; }

namespace {

constexpr uint64_t kPresent = 1, kWritable = 2, kLargePage = 0x80;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kLargePageSize = 2 << 20;

// Components the Registers buffer can hold in standard XSAVE format within its 4096 bytes:
// x87, SSE, AVX and the three AVX-512 components.
constexpr uint64_t kXsaveSupportedMask = 0xe7;

const struct kvm_cpuid_entry2* FindCpuid(const struct kvm_cpuid2* table, uint32_t function, uint32_t index) {
  for (uint32_t i = 0; i < table->nent; i++) {
    const auto& entry = table->entries[i];
    if (entry.function == function && entry.index == index) return &entry;
  }
  return nullptr;
}

}  // namespace

Vm::Vm() {
  kvm_fd_ = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm_fd_ < 0) ThrowErrno("open /dev/kvm");
  try {
    if (ioctl(kvm_fd_, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) Throw("KVM API version is not 12");
    vm_fd_ = ioctl(kvm_fd_, KVM_CREATE_VM, 0);
    if (vm_fd_ < 0) ThrowErrno("KVM_CREATE_VM");
    run_size_ = ioctl(kvm_fd_, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size_ < 0) ThrowErrno("KVM_GET_VCPU_MMAP_SIZE");
    if (ioctl(kvm_fd_, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) Throw("KVM lacks KVM_CAP_IMMEDIATE_EXIT");
    DetectFeatures();
    SetUpKernelMemory();
  } catch (...) {
    if (vm_fd_ >= 0) close(vm_fd_);
    close(kvm_fd_);
    if (kernel_mem_ != nullptr) munmap(kernel_mem_, GUEST_KERNEL_MEM_SIZE);
    throw;
  }
}

Vm::~Vm() {
  // Parked vCPUs join their threads and close their descriptors before the VM descriptor goes.
  parked_vcpus_.clear();
  // Closing the VM descriptor frees the slots; the host mappings behind them go after it.
  close(vm_fd_);
  close(kvm_fd_);
  for (auto& [key, file] : files_) {
    munmap(file.host_base, file_span_);
    close(file.fd);
  }
  munmap(kernel_mem_, GUEST_KERNEL_MEM_SIZE);
}

void Vm::DetectFeatures() {
  constexpr int kMaxEntries = 256;
  cpuid_.assign(sizeof(struct kvm_cpuid2) + kMaxEntries * sizeof(struct kvm_cpuid_entry2), 0);
  auto* table = reinterpret_cast<struct kvm_cpuid2*>(cpuid_.data());
  table->nent = kMaxEntries;
  if (ioctl(kvm_fd_, kKvmGetSupportedCpuid, table) < 0) ThrowErrno("KVM_GET_SUPPORTED_CPUID");

  unsigned eax, ebx, ecx, edx;
  __cpuid(1, eax, ebx, ecx, edx);
  features_.nested = (ecx >> 31) & 1;

  // The guest may enable a CPU feature in CR4 only if its CPUID offers it; KVM rejects the rest.
  const auto* leaf1 = FindCpuid(table, 1, 0);
  const auto* leaf7 = FindCpuid(table, 7, 0);
  const auto* leafd = FindCpuid(table, 0xd, 0);
  features_.xsave = leaf1 != nullptr && ((leaf1->ecx >> 26) & 1) && leafd != nullptr;
  if (features_.xsave) {
    features_.xsave_mask = leafd->eax & kXsaveSupportedMask;
    uint32_t size = 576;
    for (int component = 2; component < 8; component++) {
      if (!((features_.xsave_mask >> component) & 1)) continue;
      const auto* sub = FindCpuid(table, 0xd, component);
      if (sub != nullptr && sub->ebx + sub->eax > size) size = sub->ebx + sub->eax;
    }
    features_.xsave_size = size;
  } else {
    features_.xsave_mask = 3;
    features_.xsave_size = 512;
  }
  features_.fsgsbase = leaf7 != nullptr && (leaf7->ebx & 1);

  // Memory files are spaced evenly in guest-physical space, within the guest's physical width.
  const auto* widths = FindCpuid(table, 0x80000008, 0);
  uint32_t phys_bits = widths != nullptr ? (widths->eax & 0xff) : 36;
  if (phys_bits > 48) phys_bits = 48;
  file_span_ = uint64_t(1) << (phys_bits >= 44 ? 40 : phys_bits - 4);
  next_file_gpa_ = file_span_;
}

void Vm::AddSlot(uint64_t gpa, uint64_t size, uint8_t* host) {
  struct kvm_userspace_memory_region region = {};
  region.slot = next_slot_;
  region.guest_phys_addr = gpa;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (ioctl(vm_fd_, KVM_SET_USER_MEMORY_REGION, &region) < 0) ThrowErrno("KVM_SET_USER_MEMORY_REGION");
  next_slot_++;
}

void Vm::SetUpKernelMemory() {
  void* mem = mmap(nullptr, GUEST_KERNEL_MEM_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) ThrowErrno("mmap of guest kernel memory");
  kernel_mem_ = static_cast<uint8_t*>(mem);
  // Node forks children (child_process); they must not inherit a copy of guest memory.
  madvise(kernel_mem_, GUEST_KERNEL_MEM_SIZE, MADV_DONTFORK);
  AddSlot(0, GUEST_KERNEL_MEM_SIZE, kernel_mem_);

  size_t code_size = tsvisor_guest_end - tsvisor_guest_start;
  if (code_size > GUEST_CODE_MAX) Throw("guest kernel code is larger than its slot");
  memcpy(kernel_mem_ + GUEST_CODE_GPA, tsvisor_guest_start, code_size);

  // The kernel half: PML4 entry 511 -> PDPT, entry 510 -> a page directory of 2 MiB pages that
  // covers slot 0, supervisor-only. Every address space's PML4 points at the same PDPT.
  auto* pdpt = reinterpret_cast<uint64_t*>(kernel_mem_ + GUEST_KERNEL_PDPT_GPA);
  auto* pd = reinterpret_cast<uint64_t*>(kernel_mem_ + GUEST_KERNEL_PD_GPA);
  pdpt[510] = GUEST_KERNEL_PD_GPA | kPresent | kWritable;
  for (uint64_t i = 0; i < GUEST_KERNEL_MEM_SIZE / kLargePageSize; i++) {
    pd[i] = i * kLargePageSize | kPresent | kWritable | kLargePage;
  }
  auto* boot_pml4 = reinterpret_cast<uint64_t*>(kernel_mem_ + GUEST_BOOT_PML4_GPA);
  boot_pml4[511] = GUEST_KERNEL_PDPT_GPA | kPresent | kWritable;

  // IDT: 64-bit interrupt gates (interrupts stay off in the guest kernel). int3 and into may be
  // executed by ring 3, so their gates have DPL 3; any other INT n from ring 3 raises #GP.
  auto* idt = reinterpret_cast<uint64_t*>(kernel_mem_ + GUEST_IDT_GPA);
  uint64_t vectors_va = GuestVa(features_.xsave ? tsvisor_guest_xsave_stubs : tsvisor_guest_fxsave_stubs);
  for (int vector = 0; vector < 256; vector++) {
    uint64_t handler = vectors_va + STUB_SIZE * (vector < 32 ? vector : 32);
    uint64_t dpl = (vector == 3 || vector == 4) ? 3 : 0;
    idt[2 * vector] = (handler & 0xffff) | (uint64_t(SEL_KERNEL_CS) << 16) | (uint64_t(0x8e | dpl << 5) << 40) |
                      ((handler >> 16) & 0xffff) << 48;
    idt[2 * vector + 1] = handler >> 32;
  }

  vcpu_used_.assign(VCPU_MAX, false);
}

uint64_t Vm::AllocPage() {
  uint64_t gpa;
  if (!free_pages_.empty()) {
    gpa = free_pages_.back();
    free_pages_.pop_back();
  } else {
    if (pool_next_ >= GUEST_KERNEL_MEM_SIZE) Throw("guest page-table pool is exhausted (64 MiB of page tables)");
    gpa = pool_next_;
    pool_next_ += kPage;
  }
  memset(kernel_mem_ + gpa, 0, kPage);
  return gpa;
}

void Vm::FreePage(uint64_t gpa) { free_pages_.push_back(gpa); }

uint64_t Vm::FileGpa(int fd, uint64_t offset, uint64_t length) {
  struct stat st;
  if (fstat(fd, &st) < 0) ThrowErrno("fstat of the memory file");
  auto key = std::make_pair(uint64_t(st.st_dev), uint64_t(st.st_ino));
  auto it = files_.find(key);
  if (it == files_.end()) {
    FileSlots file;
    void* reservation = mmap(nullptr, file_span_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reservation == MAP_FAILED) ThrowErrno("mmap of a memory-file reservation");
    file.host_base = static_cast<uint8_t*>(reservation);
    file.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (file.fd < 0) {
      munmap(reservation, file_span_);
      ThrowErrno("dup of the memory file");
    }
    file.gpa_base = next_file_gpa_;
    next_file_gpa_ += file_span_;
    it = files_.emplace(key, file).first;
  }

  FileSlots& file = it->second;
  uint64_t end = offset + length;
  if (end > file_span_) Throw("memory-file range ends beyond " + std::to_string(file_span_) + " bytes, the most one file may use");
  if (end > file.mapped) {
    // Grow by at least doubling, in 2 MiB steps, so a growing file needs few slots.
    uint64_t grow = end - file.mapped;
    if (grow < file.mapped) grow = file.mapped;
    grow = (grow + kLargePageSize - 1) & ~(kLargePageSize - 1);
    if (file.mapped + grow > file_span_) grow = file_span_ - file.mapped;
    void* host = mmap(file.host_base + file.mapped, grow, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, file.fd, file.mapped);
    if (host == MAP_FAILED) ThrowErrno("mmap of the memory file");
    madvise(host, grow, MADV_DONTFORK);
    AddSlot(file.gpa_base + file.mapped, grow, file.host_base + file.mapped);
    file.mapped += grow;
  }
  return file.gpa_base + offset;
}

uint8_t* Vm::FileHost(uint64_t gpa, uint64_t length) {
  for (auto& [key, file] : files_) {
    if (gpa >= file.gpa_base && gpa + length <= file.gpa_base + file.mapped) return file.host_base + (gpa - file.gpa_base);
  }
  return nullptr;
}

int Vm::MaxVcpus() const {
  int max = ioctl(kvm_fd_, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
  // Kernels without KVM_CAP_MAX_VCPUS recommend KVM_CAP_NR_VCPUS instead (KVM API documentation).
  if (max <= 0) max = ioctl(kvm_fd_, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
  if (max <= 0) max = 1;
  return max < int(VCPU_MAX) ? max : int(VCPU_MAX);
}

int Vm::AllocVcpuIndex() {
  for (size_t i = 0; i < vcpu_used_.size(); i++) {
    if (!vcpu_used_[i]) {
      vcpu_used_[i] = true;
      return int(i);
    }
  }
  Throw("too many vCPUs: the guest kernel has blocks for " + std::to_string(VCPU_MAX));
}

void Vm::FreeVcpuIndex(int index) { vcpu_used_[index] = false; }

std::unique_ptr<Vcpu> Vm::AcquireVcpu(std::function<void()> notify) {
  if (parked_vcpus_.empty()) return std::make_unique<Vcpu>(this, std::move(notify));
  std::unique_ptr<Vcpu> vcpu = std::move(parked_vcpus_.back());
  parked_vcpus_.pop_back();
  // A vCPU that cannot be reset is destroyed here; its block number is free again.
  vcpu->Reset(std::move(notify));
  return vcpu;
}

void Vm::ParkVcpu(std::unique_ptr<Vcpu> vcpu) {
  vcpu->Park();
  parked_vcpus_.push_back(std::move(vcpu));
}

void Vm::InvalidateShadowPages() {
  // Deleting a memory slot makes KVM discard every shadow page table of the VM. A one-page slot
  // that is added and removed again costs two ioctls and leaves guest memory untouched.
  uint64_t gpa = next_file_gpa_;  // never used by a file yet
  uint8_t* page = kernel_mem_ + GUEST_KERNEL_MEM_SIZE - kPage;
  struct kvm_userspace_memory_region region = {};
  region.slot = next_slot_;
  region.guest_phys_addr = gpa;
  region.memory_size = kPage;
  region.userspace_addr = reinterpret_cast<uint64_t>(page);
  if (ioctl(vm_fd_, KVM_SET_USER_MEMORY_REGION, &region) < 0) ThrowErrno("KVM_SET_USER_MEMORY_REGION (add)");
  region.memory_size = 0;
  if (ioctl(vm_fd_, KVM_SET_USER_MEMORY_REGION, &region) < 0) ThrowErrno("KVM_SET_USER_MEMORY_REGION (delete)");
}

uint64_t Vm::GuestVa(const uint8_t* symbol) { return KernelVa(symbol - tsvisor_guest_start); }

}  // namespace tsvisor_kvm
