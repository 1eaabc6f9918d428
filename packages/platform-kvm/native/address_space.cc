// Four-level guest page tables, written by the host. New mappings need nothing more; replacing or
// removing one also bumps the generation (each vCPU reloads CR3 before it next enters this address
// space) and asks the VM to discard shadow page tables, which a nested hypervisor keeps.
#include "address_space.h"

#include <cstring>

namespace tsvisor_kvm {

namespace {

constexpr uint64_t kPresent = 1, kWritable = 2, kUser = 4, kNoExecute = uint64_t(1) << 63;
constexpr uint64_t kAddressMask = 0x000ffffffffff000;
constexpr uint64_t kPage = 4096;

}  // namespace

AddressSpace::AddressSpace(Vm* vm) : vm_(vm) {
  pml4_ = vm_->AllocPage();
  auto* table = reinterpret_cast<uint64_t*>(vm_->KernelHost(pml4_));
  table[511] = GUEST_KERNEL_PDPT_GPA | kPresent | kWritable;
}

AddressSpace::~AddressSpace() {
  auto* table = reinterpret_cast<uint64_t*>(vm_->KernelHost(pml4_));
  for (int i = 0; i < 256; i++) {
    if (table[i] & kPresent) FreeTable(table[i] & kAddressMask, 3);
  }
  vm_->FreePage(pml4_);
}

void AddressSpace::FreeTable(uint64_t gpa, int level) {
  if (level > 1) {
    auto* table = reinterpret_cast<uint64_t*>(vm_->KernelHost(gpa));
    for (int i = 0; i < 512; i++) {
      if (table[i] & kPresent) FreeTable(table[i] & kAddressMask, level - 1);
    }
  }
  vm_->FreePage(gpa);
}

// Returns the last-level entry for `addr`, creating the tables above it when `create` is set, or
// nullptr when they do not exist.
uint64_t* AddressSpace::Entry(uint64_t addr, bool create) {
  uint64_t table = pml4_;
  for (int shift = 39; shift > 12; shift -= 9) {
    auto* entries = reinterpret_cast<uint64_t*>(vm_->KernelHost(table));
    uint64_t& entry = entries[(addr >> shift) & 511];
    if (!(entry & kPresent)) {
      if (!create) return nullptr;
      // Intermediate entries allow everything; the last level decides.
      entry = vm_->AllocPage() | kPresent | kWritable | kUser;
    }
    table = entry & kAddressMask;
  }
  return reinterpret_cast<uint64_t*>(vm_->KernelHost(table)) + ((addr >> 12) & 511);
}

void AddressSpace::MapFile(uint64_t addr, int fd, uint64_t offset, uint64_t length, uint32_t access) {
  if (access == 0) {
    Unmap(addr, length);
    return;
  }
  uint64_t gpa = vm_->FileGpa(fd, offset, length);

  // x86 pages cannot be writable or executable without being readable, so Write and Execute imply Read.
  uint64_t flags = kPresent | kUser;
  if (access & kAccessWrite) flags |= kWritable;
  if (!(access & kAccessExecute)) flags |= kNoExecute;

  bool replaced = false;
  for (uint64_t done = 0; done < length; done += kPage) {
    uint64_t* entry = Entry(addr + done, true);
    uint64_t wanted = (gpa + done) | flags;
    if ((*entry & kPresent) && *entry != wanted) replaced = true;
    *entry = wanted;
  }
  if (replaced) {
    generation_++;
    vm_->InvalidateShadowPages();
  }
}

void AddressSpace::Unmap(uint64_t addr, uint64_t length) {
  bool removed = false;
  for (uint64_t done = 0; done < length; done += kPage) {
    uint64_t* entry = Entry(addr + done, false);
    if (entry == nullptr) {
      // No table for this 2 MiB: skip to the next one.
      uint64_t next = ((addr + done) | 0x1fffff) + 1;
      done = next - addr - kPage;
      continue;
    }
    if (*entry & kPresent) removed = true;
    *entry = 0;
  }
  // NOTE: a vCPU that is running in this address space right now keeps its translations until its
  // next switch (which reloads CR3). Under shadow paging the discarded shadow pages take effect at
  // once; with hardware nested paging the interval is the rest of that vCPU's current run.
  if (removed) {
    generation_++;
    vm_->InvalidateShadowPages();
  }
}

bool AddressSpace::Read(uint64_t addr, void* out, uint64_t length) {
  if ((addr & (kPage - 1)) + length > kPage || addr >= (uint64_t(1) << 47)) return false;
  uint64_t* entry = Entry(addr, false);
  if (entry == nullptr || !(*entry & kPresent)) return false;
  uint8_t* host = vm_->FileHost((*entry & kAddressMask) + (addr & (kPage - 1)), length);
  if (host == nullptr) return false;
  memcpy(out, host, length);
  return true;
}

}  // namespace tsvisor_kvm
