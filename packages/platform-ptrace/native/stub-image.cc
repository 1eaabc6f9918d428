#include "stub-image.h"

#include <elf.h>

#include <cstring>

namespace tsvisor_ptrace {

namespace {

class CodeWriter {
 public:
  explicit CodeWriter(std::vector<uint8_t>& page, uint64_t offset) : page_(page), offset_(offset) {}

  void Bytes(std::initializer_list<uint8_t> bytes) {
    for (uint8_t b : bytes) page_[offset_++] = b;
  }

  void U32(uint32_t value) {
    std::memcpy(&page_[offset_], &value, 4);
    offset_ += 4;
  }

  void U64(uint64_t value) {
    std::memcpy(&page_[offset_], &value, 8);
    offset_ += 8;
  }

  uint64_t offset() const { return offset_; }

 private:
  std::vector<uint8_t>& page_;
  uint64_t offset_;
};

// Writes the entry code and returns the rip of its final stop. Its assembly, one line each:
//   rt_sigprocmask(SIG_SETMASK, zero mask, NULL, 8), result in r12
//   munmap(0, kStubBase), result in r13
//   munmap(kStubEnd, kUserTop - kStubEnd), result in r14
//   int3, then ud2 in case the tracer resumes past it
uint64_t WriteEntry(std::vector<uint8_t>& page) {
  CodeWriter code(page, kEntryOffset);
  code.Bytes({0xb8}); code.U32(14);
  code.Bytes({0xbf}); code.U32(2);
  code.Bytes({0x48, 0xbe}); code.U64(kStubBase + kZeroMaskOffset);
  code.Bytes({0x31, 0xd2});
  code.Bytes({0x41, 0xba}); code.U32(8);
  code.Bytes({0x0f, 0x05});
  code.Bytes({0x49, 0x89, 0xc4});

  code.Bytes({0xb8}); code.U32(11);
  code.Bytes({0x31, 0xff});
  code.Bytes({0x48, 0xbe}); code.U64(kStubBase);
  code.Bytes({0x0f, 0x05});
  code.Bytes({0x49, 0x89, 0xc5});

  code.Bytes({0xb8}); code.U32(11);
  code.Bytes({0x48, 0xbf}); code.U64(kStubEnd);
  code.Bytes({0x48, 0xbe}); code.U64(kUserTop - kStubEnd);
  code.Bytes({0x0f, 0x05});
  code.Bytes({0x49, 0x89, 0xc6});

  code.Bytes({0xcc});
  uint64_t trapRip = kStubBase + code.offset();
  code.Bytes({0x0f, 0x0b});
  return trapRip;
}

}  // namespace

uint64_t EntryTrapRip() {
  std::vector<uint8_t> page(kPageSize, 0);
  return WriteEntry(page);
}

std::vector<uint8_t> BuildStubImage() {
  std::vector<uint8_t> page(kPageSize, 0);

  Elf64_Ehdr header{};
  std::memcpy(header.e_ident, ELFMAG, SELFMAG);
  header.e_ident[EI_CLASS] = ELFCLASS64;
  header.e_ident[EI_DATA] = ELFDATA2LSB;
  header.e_ident[EI_VERSION] = EV_CURRENT;
  header.e_ident[EI_OSABI] = ELFOSABI_SYSV;
  header.e_type = ET_EXEC;
  header.e_machine = EM_X86_64;
  header.e_version = EV_CURRENT;
  header.e_entry = kStubBase + kEntryOffset;
  header.e_phoff = sizeof(Elf64_Ehdr);
  header.e_ehsize = sizeof(Elf64_Ehdr);
  header.e_phentsize = sizeof(Elf64_Phdr);
  header.e_phnum = 2;
  std::memcpy(&page[0], &header, sizeof header);

  Elf64_Phdr load{};
  load.p_type = PT_LOAD;
  load.p_flags = PF_R | PF_X;
  load.p_offset = 0;
  load.p_vaddr = kStubBase;
  load.p_paddr = kStubBase;
  load.p_filesz = kPageSize;
  load.p_memsz = kPageSize;
  load.p_align = kPageSize;
  std::memcpy(&page[sizeof header], &load, sizeof load);

  // A non-executable stack, so the kernel does not turn on READ_IMPLIES_EXEC for the stub.
  Elf64_Phdr stack{};
  stack.p_type = PT_GNU_STACK;
  stack.p_flags = PF_R | PF_W;
  std::memcpy(&page[sizeof header + sizeof load], &stack, sizeof stack);

  WriteEntry(page);

  // The gadget: syscall; int3.
  page[kGadgetOffset] = 0x0f;
  page[kGadgetOffset + 1] = 0x05;
  page[kGadgetOffset + 2] = 0xcc;
  return page;
}

}  // namespace tsvisor_ptrace
