// Guest page tables of one application address space. They map the lower half (user pages, from
// memory-file slots) and share the kernel half with every other address space.
#pragma once

#include <cstdint>

#include "vm.h"

namespace tsvisor_kvm {

// Access bits as in @tsvisor/platform-api's Access.
enum AccessBits : uint32_t { kAccessRead = 1, kAccessWrite = 2, kAccessExecute = 4 };

class AddressSpace {
 public:
  explicit AddressSpace(Vm* vm);
  ~AddressSpace();
  AddressSpace(const AddressSpace&) = delete;
  AddressSpace& operator=(const AddressSpace&) = delete;

  uint64_t root() const { return pml4_; }

  // Incremented whenever a translation is removed or narrowed, so vCPUs know to flush.
  uint64_t generation() const { return generation_; }

  void MapFile(uint64_t addr, int fd, uint64_t offset, uint64_t length, uint32_t access);
  void Unmap(uint64_t addr, uint64_t length);

  // Copies `length` bytes (within one page) of application memory at `addr` into `out`. Returns
  // false when the page is not mapped.
  bool Read(uint64_t addr, void* out, uint64_t length);

 private:
  uint64_t* Entry(uint64_t addr, bool create);
  void FreeTable(uint64_t gpa, int level);

  Vm* vm_;
  uint64_t pml4_;
  uint64_t generation_ = 0;
};

}  // namespace tsvisor_kvm
