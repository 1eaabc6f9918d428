// Fixed layout of a systrap stub process, shared by the stub's assembly and the sentry side.
//
// A stub's address space contains nothing of the application below STUB_MAX_USER_ADDRESS. Above it
// lie the stub's code (the only place from which the seccomp programs let system calls through),
// the control thread's stack, and the shared region: one memfd mapped both here and in the
// sentry. The shared region starts with a read-only request page (control requests, the seccomp
// programs) and a writable reply page, followed by one slot per stub thread. A slot holds the thread's futex words and its alternate
// signal stack, so the kernel writes every signal frame straight into memory the sentry can read
// and edit.
//
// Values are plain macros because the stub's assembly uses them too.
#ifndef TSVISOR_SYSTRAP_LAYOUT_H
#define TSVISOR_SYSTRAP_LAYOUT_H

#define STUB_MAX_USER_ADDRESS 0x7f0000000000
#define STUB_CODE_ADDRESS 0x7fff00000000
#define STUB_CODE_SIZE 0x2000
#define STUB_STACK_ADDRESS 0x7fff00100000
#define STUB_STACK_SIZE 0x10000
#define STUB_SHARED_ADDRESS 0x7fff10000000
// Highest end of a user mapping on x86-64 with 4-level paging (TASK_SIZE).
#define STUB_TASK_SIZE 0x7ffffffff000

// Descriptor numbers the stub process keeps while it starts: the shared memfd, and its end of
// the socket pair over which the sentry passes memory-file descriptors.
#define STUB_SHARED_FD 10
#define STUB_SOCKET_FD 11

// Request page: the first page of the shared region, written by the sentry and mapped read-only
// in the stub, so application code that runs in the stub cannot forge a control request or edit
// the seccomp programs. The control thread runs a request when HDR_REQ_SEQ differs from the
// sequence number it keeps in a register.
#define HDR_REQ_SEQ 0x00
#define HDR_REQ_NR 0x08
#define HDR_REQ_ARGS 0x10
#define HDR_SPIN_TICKS 0x40
#define HDR_HAS_FSGSBASE 0x48
// struct sock_fprog of the process filter (installed at start-up) and of the thread filter
// (installed by each application thread on top of it).
#define HDR_FPROG_PROCESS 0x60
#define HDR_FPROG_THREAD 0x70
#define HDR_FILTER_PROCESS 0x100
#define HDR_FILTER_THREAD 0x800
#define HDR_FILTER_MAX_INSNS 224
#define HDR_REQUEST_PAGE_SIZE 0x1000

// Reply page: the second page, writable by the stub. Application code can write it too, so the
// sentry never trusts it for more than the result of its own request.
#define HDR_DONE_SEQ 0x1000
#define HDR_CTRL_STUB_SLEEPING 0x1004
#define HDR_CTRL_SENTRY_SLEEPING 0x1008
#define HDR_REQ_RESULT 0x1010
#define HDR_MSGHDR 0x1040
#define HDR_IOVEC 0x1080
#define HDR_IOBYTE 0x1090
#define HDR_CMSG 0x10a0
#define HDR_CMSG_SIZE 0x20

// A slot per stub thread. SLOT_SIZE is a power of two and slots are aligned to it, so the stub
// finds its slot from any stack pointer inside it.
#define SLOT_SIZE 0x10000
#define SLOT_MASK 0xffffffffffff0000
#define SLOT_FIRST_OFFSET SLOT_SIZE
#define STUB_MAX_THREADS 4096
#define STUB_SHARED_SIZE (SLOT_FIRST_OFFSET + STUB_MAX_THREADS * SLOT_SIZE)

#define SLOT_STATE 0x00
#define SLOT_STUB_SLEEPING 0x04
#define SLOT_SENTRY_SLEEPING 0x08
#define SLOT_CLEAR_TID 0x0c
#define SLOT_SIGNO 0x10
#define SLOT_SIGINFO 0x18
#define SLOT_UCONTEXT 0x20
#define SLOT_FS_BASE 0x28
#define SLOT_GS_BASE 0x30
#define SLOT_TID 0x38
// The initial stack of a new thread ends here; the alternate signal stack starts here.
#define SLOT_ALTSTACK 0x1000
#define SLOT_ALTSTACK_SIZE (SLOT_SIZE - SLOT_ALTSTACK)

// Values of SLOT_STATE.
#define SLOT_RUNNING 0
// The thread is in its signal handler; the frame is valid and belongs to the sentry.
#define SLOT_EVENT 1
// The sentry edited the frame; the thread returns from its handler into application code.
#define SLOT_RESUME 2
// The thread exits instead of returning.
#define SLOT_EXIT 3

// The host signal that interrupt() sends to a running stub thread.
#define STUB_INTERRUPT_SIGNAL 12

#endif
