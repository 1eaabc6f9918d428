/*
 * Layout of guest-physical memory and of the per-vCPU state page, shared by the guest kernel
 * (guest.S) and the host (C++). Only preprocessor constants, so the assembler can include it.
 *
 * Guest-physical memory slot 0 is the guest kernel's memory. It is mapped, supervisor-only, at
 * GUEST_KERNEL_VA. Other slots hold the memory files that address spaces map; they are never
 * mapped into the kernel's half.
 *
 *   0x000000  guest kernel code, copied from this addon
 *   0x008000  IDT, shared by every vCPU
 *   0x009000  kernel PDPT and (0x00a000) kernel page directory, shared by every address space
 *   0x00b000  boot PML4: the kernel mapping only, used until a vCPU first enters an address space
 *   0x010000  one VCPU_BLOCK_SIZE block per vCPU: GDT and TSS, XSAVE area, kernel stack
 *   0x400000  page-table pool for the address spaces' page tables
 */
#ifndef TSVISOR_KVM_GUEST_LAYOUT_H
#define TSVISOR_KVM_GUEST_LAYOUT_H

/* The high 2 GiB of the address space. Nested KVM on kvm_pvm cannot use 0xffff800000000000 and above
 * except this range, which real hardware accepts as well. */
#define GUEST_KERNEL_VA 0xffffffff80000000
#define GUEST_KERNEL_MEM_SIZE 0x4000000 /* 64 MiB, reserved lazily on the host */

#define GUEST_CODE_GPA 0x0
#define GUEST_CODE_MAX 0x8000
#define GUEST_IDT_GPA 0x8000
#define GUEST_KERNEL_PDPT_GPA 0x9000
#define GUEST_KERNEL_PD_GPA 0xa000
#define GUEST_BOOT_PML4_GPA 0xb000
#define GUEST_VCPU_BLOCKS_GPA 0x10000
#define GUEST_PAGE_POOL_GPA 0x400000

/* The guest kernel finds its vCPU's XSAVE area at a fixed distance from the stack pointer. */
#define VCPU_BLOCK_SIZE 0x8000
#define VCPU_MAX ((GUEST_PAGE_POOL_GPA - GUEST_VCPU_BLOCKS_GPA) / VCPU_BLOCK_SIZE)
#define VCPU_GDT_OFFSET 0x0
#define VCPU_TSS_OFFSET 0x100
/* The vCPU's SYSCALL entry (LSTAR), a copy of tsvisor_guest_syscall_entry, and the slot where it
 * keeps the application's stack pointer. */
#define VCPU_SYSCALL_ENTRY_OFFSET 0x800
#define VCPU_SYSCALL_RSP_OFFSET 0xf00
#define VCPU_XSAVE_OFFSET 0x2000
#define VCPU_XSAVE_SIZE 0x1000
/* The stack grows down from the end of the block. */
#define VCPU_STACK_TOP VCPU_BLOCK_SIZE

/* GDT selectors, the same values Linux gives user code, so saved selectors look native. */
#define SEL_KERNEL_CS 0x08
#define SEL_KERNEL_DS 0x10
#define SEL_USER32_CS 0x23
#define SEL_USER_DS 0x2b
#define SEL_USER_CS 0x33
#define SEL_TSS 0x38
#define GDT_ENTRIES 9

/* Offsets in struct user_regs_struct, the first part of the Registers layout, which the host reads
 * and writes on every switch. The guest has no access to it. */
#define ST_R15 0
#define ST_R14 8
#define ST_R13 16
#define ST_R12 24
#define ST_RBP 32
#define ST_RBX 40
#define ST_R11 48
#define ST_R10 56
#define ST_R9 64
#define ST_R8 72
#define ST_RAX 80
#define ST_RCX 88
#define ST_RDX 96
#define ST_RSI 104
#define ST_RDI 112
#define ST_ORIG_RAX 120
#define ST_RIP 128
#define ST_CS 136
#define ST_EFLAGS 144
#define ST_RSP 152
#define ST_SS 160
#define ST_FS_BASE 168
#define ST_GS_BASE 176
#define ST_GPR_SIZE 216

/* The CPU's exception frame (RIP, CS, RFLAGS, RSP, SS) sits at the top of the vCPU's stack, with the
 * error code below it for vectors that have one. The host writes the frame IRETQ returns through at
 * the same place. */
#define FRAME_SIZE 40

/* Exit vectors beyond the 32 exception vectors. */
#define EXIT_SYSCALL 0x100
#define EXIT_INTERRUPTED 0x101
/* A 32-bit system call (int 0x80); RIP points past the instruction and RAX holds the number. */
#define EXIT_COMPAT_SYSCALL 0x102

/* I/O ports the guest writes to leave to the host: one per exception vector, so the guest needs no
 * instruction to say which vector it is, and one for the end of the boot code. */
#define PORT_READY 0x10
#define PORT_SYSCALL 0x11 /* the SYSCALL entry, where SYSCALL enters ring 0 */
#define PORT_VECTOR_BASE 0x20

/* Exception stubs are this far apart; entry N of a stub table handles vector N, entry 32 the rest. */
#define STUB_SIZE 32

#endif
