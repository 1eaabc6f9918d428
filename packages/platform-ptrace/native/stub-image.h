// The stub program: one page of machine code, loaded by execve as a static ELF executable at a
// fixed address high in the address space. Its entry code unblocks every signal, unmaps the rest
// of the address space and stops at an int3, so the stub starts with nothing of Node in it. From
// then on the tracer runs system calls in it by pointing rip at the `syscall; int3` gadget.
#pragma once

#include <cstdint>
#include <vector>

namespace tsvisor_ptrace {

constexpr uint64_t kPageSize = 4096;

// The stub page lies below the lowest initial stack top that stack randomization can choose
// (TASK_SIZE minus 16 GiB on x86-64), so the stack never collides with it at execve. Everything
// below it is the application's.
constexpr uint64_t kStubBase = 0x7ff000000000ULL;
constexpr uint64_t kStubEnd = kStubBase + kPageSize;

// Top of the 47-bit user address space (TASK_SIZE with 4-level page tables).
constexpr uint64_t kUserTop = 0x7ffffffff000ULL;

// Offsets in the stub page.
constexpr uint64_t kEntryOffset = 0x100;
constexpr uint64_t kGadgetOffset = 0x200;
// Scratch area for strings the tracer writes with PTRACE_POKEDATA. The page is read-only and
// executable for the application, so only the tracer (which writes with FOLL_FORCE) can change it.
constexpr uint64_t kScratchOffset = 0xe00;
constexpr uint64_t kScratchSize = 0x100;
// Eight zero bytes: the empty signal mask the entry code installs.
constexpr uint64_t kZeroMaskOffset = 0xf00;

constexpr uint64_t kGadgetAddress = kStubBase + kGadgetOffset;
// rip after the gadget's int3 has trapped.
constexpr uint64_t kGadgetTrapRip = kGadgetAddress + 3;
constexpr uint64_t kScratchAddress = kStubBase + kScratchOffset;

// Returns the ELF file of the stub program, exactly one page long.
std::vector<uint8_t> BuildStubImage();

// Returns rip at the stop that ends the entry code. The entry code leaves the results of its
// three system calls (rt_sigprocmask, munmap below, munmap above) in r12, r13 and r14.
uint64_t EntryTrapRip();

}  // namespace tsvisor_ptrace
