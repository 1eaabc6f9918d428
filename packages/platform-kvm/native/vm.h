// A KVM virtual machine that runs application code in guest ring 3 under the guest kernel of
// guest.S. The VM owns the guest kernel's memory (slot 0), a pool of page-table pages, and one set
// of memory slots per memory file that address spaces map.
//
// Threads: every method is called from the JavaScript thread except where a comment says otherwise.
// vCPU threads only touch their own vCPU block and never call into Vm.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <linux/kvm.h>

#include "guest_layout.h"

namespace tsvisor_kvm {

class Vcpu;

// Thrown for a failed host call; `what()` names the call and errno.
struct KvmError {
  std::string message;
};

[[noreturn]] void ThrowErrno(const std::string& call);
[[noreturn]] void Throw(const std::string& message);

// What the host CPU and KVM offer the guest, decided once per VM.
struct GuestFeatures {
  bool xsave = false;       // XSAVE with xsave_mask, else FXSAVE (x87 and SSE only)
  uint64_t xsave_mask = 0;  // XCR0 of the guest
  uint32_t xsave_size = 512;
  bool fsgsbase = false;
  bool nested = false;      // the host CPU reports a hypervisor
};

// The memory slots of one host file, contiguous in guest-physical and host-virtual space so that
// growing the file only appends a slot.
struct FileSlots {
  uint64_t gpa_base = 0;
  uint8_t* host_base = nullptr;  // reservation of Vm::file_span_ bytes
  uint64_t mapped = 0;           // bytes of the file covered by slots so far
  int fd = -1;                   // a duplicate, closed when the VM is closed
};

class Vm {
 public:
  Vm();
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  int vm_fd() const { return vm_fd_; }
  int kvm_fd() const { return kvm_fd_; }
  int run_size() const { return run_size_; }
  // Bytes of each memory file that MapFile can reach: the guest-physical window given to one file.
  uint64_t file_span() const { return file_span_; }
  const GuestFeatures& features() const { return features_; }
  const struct kvm_cpuid2* cpuid() const { return reinterpret_cast<const struct kvm_cpuid2*>(cpuid_.data()); }

  // Host pointer of a guest-physical address in the kernel's memory.
  uint8_t* KernelHost(uint64_t gpa) { return kernel_mem_ + gpa; }
  static uint64_t KernelVa(uint64_t gpa) { return GUEST_KERNEL_VA + gpa; }

  // A zeroed page from the page-table pool, and its return.
  uint64_t AllocPage();
  void FreePage(uint64_t gpa);

  // Guest-physical address of byte `offset` of the file open as `fd`, making sure slots cover
  // [offset, offset + length). The file is identified by device and inode, not by descriptor.
  uint64_t FileGpa(int fd, uint64_t offset, uint64_t length);

  // Host pointer of `length` bytes at a memory-file guest-physical address, or nullptr when they
  // are not all inside one file's slots.
  uint8_t* FileHost(uint64_t gpa, uint64_t length);

  // The number of vCPUs this VM can run at once: KVM's maximum for one VM (KVM_CAP_MAX_VCPUS), and
  // no more than the guest kernel's memory has vCPU blocks for.
  int MaxVcpus() const;

  // vCPU block numbers are handed out and returned here.
  int AllocVcpuIndex();
  void FreeVcpuIndex(int index);

  // A KVM vCPU id that this VM has not used yet. KVM keeps every vCPU it created until the VM
  // descriptor is closed, so an id is never handed out twice, even after its vCPU was destroyed.
  int NextVcpuId() { return next_vcpu_id_++; }

  // Returns a vCPU for a new context: a parked one, reset to the state of a new vCPU, or else a new
  // one. `notify` is called from the vCPU thread when a pending run has finished.
  std::unique_ptr<Vcpu> AcquireVcpu(std::function<void()> notify);

  // Parks the vCPU of a released context for AcquireVcpu. Ends a run in progress first, and
  // returns only once the vCPU thread has stopped calling the old `notify`.
  void ParkVcpu(std::unique_ptr<Vcpu> vcpu);

  // Makes every vCPU drop its cached translations of guest page tables. Needed after the host
  // removes or narrows a mapping, because a shadow-paging hypervisor does not see the host's
  // writes to guest page tables.
  void InvalidateShadowPages();

  // Guest virtual address of a symbol of guest.S.
  static uint64_t GuestVa(const uint8_t* symbol);

 private:
  void DetectFeatures();
  void SetUpKernelMemory();
  void AddSlot(uint64_t gpa, uint64_t size, uint8_t* host);

  int kvm_fd_ = -1;
  int vm_fd_ = -1;
  int run_size_ = 0;
  uint8_t* kernel_mem_ = nullptr;
  std::vector<uint8_t> cpuid_;
  GuestFeatures features_;
  uint32_t next_slot_ = 0;
  uint64_t file_span_ = 0;
  uint64_t next_file_gpa_ = 0;
  std::map<std::pair<uint64_t, uint64_t>, FileSlots> files_;
  std::vector<uint64_t> free_pages_;
  uint64_t pool_next_ = GUEST_PAGE_POOL_GPA;
  std::vector<bool> vcpu_used_;
  int next_vcpu_id_ = 0;
  // Each parked vCPU keeps its block number, its descriptor and its thread, so that parked and
  // live vCPUs together never exceed VCPU_MAX.
  std::vector<std::unique_ptr<Vcpu>> parked_vcpus_;
};

}  // namespace tsvisor_kvm
