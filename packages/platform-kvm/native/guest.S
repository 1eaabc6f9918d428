/*
 * The guest kernel. It runs at CPL0 in the guest and only moves the application between ring 3 and
 * the host; the host does all the bookkeeping.
 *
 *  - Every exception from ring 3 enters through the IDT on the vCPU's stack (TSS.RSP0). Its stub
 *    saves the FPU state into the vCPU's XSAVE area and writes to the I/O port of its vector, which
 *    exits to the host. The host reads the general registers from KVM (synchronized registers in
 *    struct kvm_run) and the exception frame from the stack.
 *  - SYSCALL enters through the vCPU's copy of tsvisor_guest_syscall_entry (see there).
 *  - To return to ring 3, the host loads the application's registers into the vCPU, writes an
 *    IRETQ frame at the top of the stack and sets RIP to one of the resume entries below.
 *
 * The guest kernel does so little because nested KVM on kvm_pvm emulates every instruction the guest
 * runs at CPL0 (about 0.5 us each, measured on such a host), while ring 3 runs natively.
 *
 * The code is copied into guest memory at GUEST_KERNEL_VA and contains no absolute addresses. The
 * host builds the IDT from the offsets of the stub tables.
 */
#include "guest_layout.h"

/* XSAVE area relative to RSP once the CPU has pushed a frame with `error` error-code bytes. */
#define FP_AREA(error) (VCPU_XSAVE_OFFSET - VCPU_STACK_TOP + FRAME_SIZE + (error))

        .section .rodata.tsvisor_guest, "a"
        .code64
        .globl tsvisor_guest_start, tsvisor_guest_end
        .globl tsvisor_guest_fxsave_stubs, tsvisor_guest_xsave_stubs
        .globl tsvisor_guest_boot_xsave, tsvisor_guest_boot
        .globl tsvisor_guest_resume_flush, tsvisor_guest_resume_fxrstor, tsvisor_guest_resume
        .globl tsvisor_guest_resume_flush_xrstor, tsvisor_guest_resume_xrstor, tsvisor_guest_resume_end
        .globl tsvisor_guest_syscall_entry, tsvisor_guest_syscall_entry_end
        .globl tsvisor_guest_syscall_entry_xsave, tsvisor_guest_syscall_entry_xsave_end
        .p2align 12
tsvisor_guest_start:

/* Stubs for hosts without XSAVE in the guest, which includes kvm_pvm: two instructions. */
.macro FXSAVE_STUB number, error
        .p2align 5
        fxsave64 FP_AREA(\error)(%rsp)
        outb %al, $(PORT_VECTOR_BASE + \number)
.endm

/* Stubs for XSAVE: the component mask goes in EDX:EAX, so both are kept on the stack meanwhile. */
.macro XSAVE_STUB number, error
        .p2align 5
        pushq %rax
        pushq %rdx
        movl $-1, %eax
        movl $-1, %edx
        xsave64 (FP_AREA(\error) + 16)(%rsp)
        popq %rdx
        popq %rax
        outb %al, $(PORT_VECTOR_BASE + \number)
.endm

/* Vectors 8, 10-14, 17, 21, 29 and 30 push an error code. */
.macro STUB_TABLE kind
        \kind 0, 0
        \kind 1, 0
        \kind 2, 0
        \kind 3, 0
        \kind 4, 0
        \kind 5, 0
        \kind 6, 0
        \kind 7, 0
        \kind 8, 8
        \kind 9, 0
        \kind 10, 8
        \kind 11, 8
        \kind 12, 8
        \kind 13, 8
        \kind 14, 8
        \kind 15, 0
        \kind 16, 0
        \kind 17, 8
        \kind 18, 0
        \kind 19, 0
        \kind 20, 0
        \kind 21, 8
        \kind 22, 0
        \kind 23, 0
        \kind 24, 0
        \kind 25, 0
        \kind 26, 0
        \kind 27, 0
        \kind 28, 0
        \kind 29, 8
        \kind 30, 8
        \kind 31, 0
        \kind 32, 0
.endm

        .p2align 5
tsvisor_guest_fxsave_stubs:
        STUB_TABLE FXSAVE_STUB

        .p2align 5
tsvisor_guest_xsave_stubs:
        STUB_TABLE XSAVE_STUB

/* Return to ring 3 through the frame at the top of the stack, RSP pointing at it. The host picks the
 * entry: reload CR3 to flush translations, restore the FPU state, or neither. */
        .p2align 4
tsvisor_guest_resume_flush:
        pushq %rax
        movq %cr3, %rax
        movq %rax, %cr3
        popq %rax
tsvisor_guest_resume_fxrstor:
        fxrstor64 FP_AREA(0)(%rsp)
tsvisor_guest_resume:
        iretq

tsvisor_guest_resume_flush_xrstor:
        pushq %rax
        movq %cr3, %rax
        movq %rax, %cr3
        popq %rax
tsvisor_guest_resume_xrstor:
        pushq %rax
        pushq %rdx
        movl $-1, %eax
        movl $-1, %edx
        xrstor64 (FP_AREA(0) + 16)(%rsp)
        popq %rdx
        popq %rax
        iretq
tsvisor_guest_resume_end:

/* First instructions of a vCPU. With XSAVE the host starts at boot_xsave with ECX = 0 and the XCR0
 * value in EDX:EAX. */
tsvisor_guest_boot_xsave:
        xsetbv
tsvisor_guest_boot:
        outb %al, $PORT_READY

/* SYSCALL entry, copied to VCPU_SYSCALL_ENTRY_OFFSET of every vCPU block, which LSTAR points at.
 * Where SYSCALL enters ring 0 (real hardware), it switches to the vCPU's stack through RIP-relative
 * addresses inside the block, saves the FPU state and exits. Nested KVM on kvm_pvm instead jumps to
 * LSTAR in ring 3, where fetching from this supervisor-only page raises #PF; the host recognises
 * that page fault as the system call. */
/* Addresses RIP-relative to the copy of an entry at VCPU_SYSCALL_ENTRY_OFFSET of the block. */
#define BLOCK_RELATIVE(offset, start) ((start) + (offset) - VCPU_SYSCALL_ENTRY_OFFSET)
        .p2align 4
tsvisor_guest_syscall_entry:
.Lsyscall_entry:
        movq %rsp, BLOCK_RELATIVE(VCPU_SYSCALL_RSP_OFFSET, .Lsyscall_entry)(%rip)
        leaq BLOCK_RELATIVE(VCPU_STACK_TOP - FRAME_SIZE, .Lsyscall_entry)(%rip), %rsp
        fxsave64 FP_AREA(0)(%rsp)
        outb %al, $PORT_SYSCALL
tsvisor_guest_syscall_entry_end:

/* The same with XSAVE. */
        .p2align 4
tsvisor_guest_syscall_entry_xsave:
.Lsyscall_entry_xsave:
        movq %rsp, BLOCK_RELATIVE(VCPU_SYSCALL_RSP_OFFSET, .Lsyscall_entry_xsave)(%rip)
        leaq BLOCK_RELATIVE(VCPU_STACK_TOP - FRAME_SIZE, .Lsyscall_entry_xsave)(%rip), %rsp
        pushq %rax
        pushq %rdx
        movl $-1, %eax
        movl $-1, %edx
        xsave64 (FP_AREA(0) + 16)(%rsp)
        popq %rdx
        popq %rax
        outb %al, $PORT_SYSCALL
tsvisor_guest_syscall_entry_xsave_end:

tsvisor_guest_end:
        .section .note.GNU-stack, "", @progbits
