// The stub: machine code that runs inside each stub process, written in assembly so that it
// depends on nothing in the process it was forked from and can be copied to a fixed address.
//
// Start-up. The sentry forks, and the child (see address_space.cc) copies this code to a
// temporary anonymous mapping and jumps to stage 2 there. Stage 2 unmaps everything else the child
// inherited, maps a fresh copy at STUB_CODE_ADDRESS and continues in stage 3 at that copy. Stage 3 maps the
// shared region, installs the signal handlers and the seccomp filter, reports CTRL_DONE and
// becomes the control thread.
//
// Control thread. It waits until the sequence number in the read-only request page changes, makes
// the system call the sentry wrote there (mmap, munmap, recvmsg, close or clone) and stores the
// result in the reply page. A clone child starts at stub_thread_start. It points its alternate
// signal stack at its slot, installs the thread filter (see filter.cc) and executes int3. Its first
// act is thus a trap like any other, and it waits in the handler for the sentry's first switch.
//
// Handler. Every trapped system call (SIGSYS from SECCOMP_RET_TRAP), fault, exception and
// interrupt lands in `handler` on the slot's alternate stack, so the kernel's signal frame
// (siginfo, ucontext, XSAVE area) is already in shared memory. The handler records where the
// frame is and the fs/gs bases, which the frame lacks, sets SLOT_EVENT and waits, spinning on
// the time-stamp counter for HDR_SPIN_TICKS before it sleeps on the futex. When the sentry sets
// SLOT_RESUME it loads the possibly new fs/gs bases and returns through rt_sigreturn, which loads
// the registers the sentry wrote into the frame.
//
// Each side sets its "sleeping" word before its futex wait and the other side wakes the futex
// only when that word is set, so the fast path makes no futex call at all. Stores that publish a
// state use xchg, a full barrier, so the following load of the other side's sleeping word cannot
// be reordered before it.
#include "layout.h"

#define STR2(x) #x
#define STR(x) STR2(x)

// clang-format off
asm(R"(
.pushsection .text
.intel_syntax noprefix
.balign 64
.globl tsvisor_systrap_stub_start
.globl tsvisor_systrap_stub_stage2
.globl tsvisor_systrap_stub_end
.globl tsvisor_systrap_site_get_fs, tsvisor_systrap_site_get_gs, tsvisor_systrap_site_event_wake
.globl tsvisor_systrap_site_event_yield, tsvisor_systrap_site_event_wait, tsvisor_systrap_site_set_fs
.globl tsvisor_systrap_site_set_gs, tsvisor_systrap_site_thread_exit, tsvisor_systrap_site_sigreturn
.globl tsvisor_systrap_site_altstack, tsvisor_systrap_site_thread_filter, tsvisor_systrap_site_fail
.globl tsvisor_systrap_site_ctrl_yield, tsvisor_systrap_site_ctrl_wait, tsvisor_systrap_site_ctrl_request
.globl tsvisor_systrap_site_ctrl_wake

tsvisor_systrap_stub_start:

# Signal handler: rdi = signal number, rsi = siginfo, rdx = ucontext.
stub_handler:
    mov rbx, rsp
    movabs rax, )" STR(SLOT_MASK) R"(
    and rbx, rax
    # A forged rt_sigreturn frame can move a thread's alternate signal stack out of its slot. Such
    # a thread must not wait where the sentry never looks, so it ends the stub: ud2 with every
    # signal blocked kills the process with SIGILL.
    mov rax, rbx
    movabs rcx, )" STR(STUB_SHARED_ADDRESS + SLOT_FIRST_OFFSET) R"(
    sub rax, rcx
    cmp rax, )" STR(STUB_MAX_THREADS * SLOT_SIZE) R"(
    jb 20f
    ud2
20:
    mov qword ptr [rbx + )" STR(SLOT_SIGNO) R"(], rdi
    mov qword ptr [rbx + )" STR(SLOT_SIGINFO) R"(], rsi
    mov qword ptr [rbx + )" STR(SLOT_UCONTEXT) R"(], rdx
    movabs r14, )" STR(STUB_SHARED_ADDRESS) R"(
    cmp qword ptr [r14 + )" STR(HDR_HAS_FSGSBASE) R"(], 0
    je 1f
    rdfsbase rcx
    mov qword ptr [rbx + )" STR(SLOT_FS_BASE) R"(], rcx
    rdgsbase rcx
    mov qword ptr [rbx + )" STR(SLOT_GS_BASE) R"(], rcx
    jmp 2f
1:
    mov eax, 158
    mov edi, 0x1003
    lea rsi, [rbx + )" STR(SLOT_FS_BASE) R"(]
    syscall
tsvisor_systrap_site_get_fs:
    mov eax, 158
    mov edi, 0x1004
    lea rsi, [rbx + )" STR(SLOT_GS_BASE) R"(]
    syscall
tsvisor_systrap_site_get_gs:
2:
    mov eax, )" STR(SLOT_EVENT) R"(
    xchg dword ptr [rbx + )" STR(SLOT_STATE) R"(], eax
    cmp dword ptr [rbx + )" STR(SLOT_SENTRY_SLEEPING) R"(], 0
    je 3f
    mov eax, 202
    lea rdi, [rbx + )" STR(SLOT_STATE) R"(]
    mov esi, 1
    mov edx, 1
    syscall
tsvisor_systrap_site_event_wake:
3:
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov r12, rax
    mov r13, qword ptr [r14 + )" STR(HDR_SPIN_TICKS) R"(]
4:
    mov eax, dword ptr [rbx + )" STR(SLOT_STATE) R"(]
    cmp eax, )" STR(SLOT_EVENT) R"(
    jne 7f
    pause
    inc r15d
    test r15d, 31
    jnz 19f
    mov eax, 24
    syscall
tsvisor_systrap_site_event_yield:
19:
    rdtsc
    shl rdx, 32
    or rax, rdx
    sub rax, r12
    cmp rax, r13
    jb 4b
    mov eax, 1
    xchg dword ptr [rbx + )" STR(SLOT_STUB_SLEEPING) R"(], eax
5:
    mov edx, dword ptr [rbx + )" STR(SLOT_STATE) R"(]
    cmp edx, )" STR(SLOT_EVENT) R"(
    jne 6f
    mov eax, 202
    lea rdi, [rbx + )" STR(SLOT_STATE) R"(]
    xor esi, esi
    xor r10d, r10d
    syscall
tsvisor_systrap_site_event_wait:
    jmp 5b
6:
    mov dword ptr [rbx + )" STR(SLOT_STUB_SLEEPING) R"(], 0
    mov eax, edx
7:
    cmp eax, )" STR(SLOT_EXIT) R"(
    je stub_thread_exit
    cmp qword ptr [r14 + )" STR(HDR_HAS_FSGSBASE) R"(], 0
    je 8f
    mov rcx, qword ptr [rbx + )" STR(SLOT_FS_BASE) R"(]
    wrfsbase rcx
    mov rcx, qword ptr [rbx + )" STR(SLOT_GS_BASE) R"(]
    wrgsbase rcx
    ret
8:
    mov eax, 158
    mov edi, 0x1002
    mov rsi, qword ptr [rbx + )" STR(SLOT_FS_BASE) R"(]
    syscall
tsvisor_systrap_site_set_fs:
    mov eax, 158
    mov edi, 0x1001
    mov rsi, qword ptr [rbx + )" STR(SLOT_GS_BASE) R"(]
    syscall
tsvisor_systrap_site_set_gs:
    ret

stub_thread_exit:
    mov eax, 60
    xor edi, edi
    syscall
tsvisor_systrap_site_thread_exit:
    ud2

# sa_restorer of every handler.
stub_restorer:
    mov eax, 15
    syscall
tsvisor_systrap_site_sigreturn:
    ud2

# First instructions of a thread made by the control thread's clone: rsp is inside its slot.
stub_thread_start:
    mov rbx, rsp
    movabs rax, )" STR(SLOT_MASK) R"(
    and rbx, rax
    sub rsp, 32
    lea rax, [rbx + )" STR(SLOT_ALTSTACK) R"(]
    mov qword ptr [rsp], rax
    mov qword ptr [rsp + 8], 0
    mov qword ptr [rsp + 16], )" STR(SLOT_ALTSTACK_SIZE) R"(
    mov eax, 131
    mov rdi, rsp
    xor esi, esi
    syscall
tsvisor_systrap_site_altstack:
    mov edi, 29
    test rax, rax
    jnz stub_fail

    # seccomp(SECCOMP_SET_MODE_FILTER, 0, &thread program): application threads may make none of
    # the control thread's system calls, whatever code they jump to.
    mov eax, 317
    mov edi, 1
    xor esi, esi
    movabs rdx, )" STR(STUB_SHARED_ADDRESS + HDR_FPROG_THREAD) R"(
    syscall
tsvisor_systrap_site_thread_filter:
    mov edi, 30
    test rax, rax
    jnz stub_fail
    int3
    ud2

# Ends the whole stub process with the exit status in edi.
stub_fail:
    mov eax, 231
    syscall
tsvisor_systrap_site_fail:
    ud2

# Stage 2, entered from the forked child with rdi = address of this temporary copy of the code.
tsvisor_systrap_stub_stage2:
    mov r12, rdi

    # Unmap everything below and above the temporary copy.
    mov eax, 11
    xor edi, edi
    mov rsi, r12
    syscall
    mov edi, 20
    test rax, rax
    jnz stub_fail
    lea rdi, [r12 + )" STR(STUB_CODE_SIZE) R"(]
    movabs rsi, )" STR(STUB_TASK_SIZE) R"(
    sub rsi, rdi
    mov eax, 11
    syscall
    mov edi, 21
    test rax, rax
    jnz stub_fail

    # Map the final code region and copy the code there.
    mov eax, 9
    movabs rdi, )" STR(STUB_CODE_ADDRESS) R"(
    mov esi, )" STR(STUB_CODE_SIZE) R"(
    mov edx, 3
    mov r10d, 0x32
    mov r8, -1
    xor r9d, r9d
    syscall
    movabs rdi, )" STR(STUB_CODE_ADDRESS) R"(
    cmp rax, rdi
    mov edi, 22
    jne stub_fail
    movabs rdi, )" STR(STUB_CODE_ADDRESS) R"(
    mov rsi, r12
    mov ecx, )" STR(STUB_CODE_SIZE) R"(
    rep movsb
    mov eax, 10
    movabs rdi, )" STR(STUB_CODE_ADDRESS) R"(
    mov esi, )" STR(STUB_CODE_SIZE) R"(
    mov edx, 5
    syscall
    mov edi, 23
    test rax, rax
    jnz stub_fail
    lea rax, [rip + stub_stage3]
    sub rax, r12
    movabs rcx, )" STR(STUB_CODE_ADDRESS) R"(
    add rax, rcx
    jmp rax

stub_stage3:
    mov eax, 11
    mov rdi, r12
    mov esi, )" STR(STUB_CODE_SIZE) R"(
    syscall

    # Shared region, then the control thread's stack.
    mov eax, 9
    movabs rdi, )" STR(STUB_SHARED_ADDRESS) R"(
    mov esi, )" STR(STUB_SHARED_SIZE) R"(
    mov edx, 3
    mov r10d, 0x11
    mov r8d, )" STR(STUB_SHARED_FD) R"(
    xor r9d, r9d
    syscall
    movabs rdi, )" STR(STUB_SHARED_ADDRESS) R"(
    cmp rax, rdi
    mov edi, 24
    jne stub_fail
    mov eax, 10
    movabs rdi, )" STR(STUB_SHARED_ADDRESS) R"(
    mov esi, )" STR(HDR_REQUEST_PAGE_SIZE) R"(
    mov edx, 1
    syscall
    mov edi, 31
    test rax, rax
    jnz stub_fail
    mov eax, 3
    mov edi, )" STR(STUB_SHARED_FD) R"(
    syscall
    mov eax, 9
    movabs rdi, )" STR(STUB_STACK_ADDRESS) R"(
    mov esi, )" STR(STUB_STACK_SIZE) R"(
    mov edx, 3
    mov r10d, 0x32
    mov r8, -1
    xor r9d, r9d
    syscall
    movabs rdi, )" STR(STUB_STACK_ADDRESS) R"(
    cmp rax, rdi
    mov edi, 25
    jne stub_fail
    lea rsp, [rax + )" STR(STUB_STACK_SIZE) R"(]
    movabs rbx, )" STR(STUB_SHARED_ADDRESS) R"(

    # struct kernel_sigaction { handler, flags, restorer, mask } for every trapped signal, with
    # SA_SIGINFO | SA_ONSTACK | SA_RESTORER and every signal blocked while the handler runs.
    sub rsp, 32
    lea rax, [rip + stub_handler]
    mov qword ptr [rsp], rax
    mov qword ptr [rsp + 8], 0x0c000004
    lea rax, [rip + stub_restorer]
    mov qword ptr [rsp + 16], rax
    mov qword ptr [rsp + 24], -1
    lea r15, [rip + stub_trapped_signals]
9:
    movzx edi, byte ptr [r15]
    test edi, edi
    jz 10f
    mov eax, 13
    mov rsi, rsp
    xor edx, edx
    mov r10d, 8
    syscall
    mov edi, 26
    test rax, rax
    jnz stub_fail
    inc r15
    jmp 9b
10:
    # prctl(PR_SET_NO_NEW_PRIVS, 1), then seccomp(SECCOMP_SET_MODE_FILTER, 0, &program).
    mov eax, 157
    mov edi, 38
    mov esi, 1
    xor edx, edx
    xor r10d, r10d
    xor r8d, r8d
    syscall
    mov edi, 27
    test rax, rax
    jnz stub_fail
    mov eax, 317
    mov edi, 1
    xor esi, esi
    lea rdx, [rbx + )" STR(HDR_FPROG_PROCESS) R"(]
    syscall
    mov edi, 28
    test rax, rax
    jnz stub_fail
    xor ebp, ebp
    jmp stub_ctrl_done

# Control loop: wait for a request, make its system call, report the result. ebp holds the
# sequence number of the last request run, in a register so that application code cannot change it.
stub_ctrl_loop:
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov r12, rax
    mov r13, qword ptr [rbx + )" STR(HDR_SPIN_TICKS) R"(]
11:
    cmp dword ptr [rbx + )" STR(HDR_REQ_SEQ) R"(], ebp
    jne 14f
    pause
    inc r15d
    test r15d, 31
    jnz 19f
    mov eax, 24
    syscall
tsvisor_systrap_site_ctrl_yield:
19:
    rdtsc
    shl rdx, 32
    or rax, rdx
    sub rax, r12
    cmp rax, r13
    jb 11b
    mov eax, 1
    xchg dword ptr [rbx + )" STR(HDR_CTRL_STUB_SLEEPING) R"(], eax
12:
    cmp dword ptr [rbx + )" STR(HDR_REQ_SEQ) R"(], ebp
    jne 13f
    mov eax, 202
    lea rdi, [rbx + )" STR(HDR_REQ_SEQ) R"(]
    xor esi, esi
    mov edx, ebp
    xor r10d, r10d
    syscall
tsvisor_systrap_site_ctrl_wait:
    jmp 12b
13:
    mov dword ptr [rbx + )" STR(HDR_CTRL_STUB_SLEEPING) R"(], 0
14:
    mov ebp, dword ptr [rbx + )" STR(HDR_REQ_SEQ) R"(]
    mov rax, qword ptr [rbx + )" STR(HDR_REQ_NR) R"(]
    mov r12, rax
    mov rdi, qword ptr [rbx + )" STR(HDR_REQ_ARGS) R"(]
    mov rsi, qword ptr [rbx + )" STR(HDR_REQ_ARGS) R"( + 8]
    mov rdx, qword ptr [rbx + )" STR(HDR_REQ_ARGS) R"( + 16]
    mov r10, qword ptr [rbx + )" STR(HDR_REQ_ARGS) R"( + 24]
    mov r8, qword ptr [rbx + )" STR(HDR_REQ_ARGS) R"( + 32]
    mov r9, qword ptr [rbx + )" STR(HDR_REQ_ARGS) R"( + 40]
    syscall
tsvisor_systrap_site_ctrl_request:
    cmp r12, 56
    jne 15f
    test rax, rax
    jz stub_thread_start
15:
    mov qword ptr [rbx + )" STR(HDR_REQ_RESULT) R"(], rax
stub_ctrl_done:
    mov eax, ebp
    xchg dword ptr [rbx + )" STR(HDR_DONE_SEQ) R"(], eax
    cmp dword ptr [rbx + )" STR(HDR_CTRL_SENTRY_SLEEPING) R"(], 0
    je stub_ctrl_loop
    mov eax, 202
    lea rdi, [rbx + )" STR(HDR_DONE_SEQ) R"(]
    mov esi, 1
    mov edx, 1
    syscall
tsvisor_systrap_site_ctrl_wake:
    jmp stub_ctrl_loop

# SIGSYS, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP and the interrupt signal; zero ends the list.
stub_trapped_signals:
    .byte 31, 11, 7, 8, 4, 5, )" STR(STUB_INTERRUPT_SIGNAL) R"(, 0

tsvisor_systrap_stub_end:
.att_syntax prefix
.popsection
)");
// clang-format on
