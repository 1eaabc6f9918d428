// Fixed layout of a systrap stub process, shared by the stub's assembly and the sentry side.
//
// A stub's address space contains nothing of the application below STUB_MAX_USER_ADDRESS. Above it
// lie the stub's code (the only place from which the seccomp filter lets system calls through),
// the control thread's private stack, and the shared region: one memfd mapped both here and in
// the sentry. The shared region starts with a header page (control requests, the seccomp program)
// followed by one slot per stub thread. A slot holds the thread's futex words and its alternate
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

// Header of the shared region.
#define HDR_CTRL_STATE 0x00
#define HDR_CTRL_STUB_SLEEPING 0x04
#define HDR_CTRL_SENTRY_SLEEPING 0x08
#define HDR_REQ_NR 0x10
#define HDR_REQ_ARGS 0x18
#define HDR_REQ_RESULT 0x48
#define HDR_SPIN_TICKS 0x50
#define HDR_HAS_FSGSBASE 0x58
#define HDR_FPROG 0x60
#define HDR_MSGHDR 0x80
#define HDR_IOVEC 0xc0
#define HDR_IOBYTE 0xd0
#define HDR_CMSG 0xe0
#define HDR_CMSG_SIZE 0x20
#define HDR_FILTER 0x100
#define HDR_FILTER_MAX_INSNS 96

// Values of HDR_CTRL_STATE.
#define CTRL_IDLE 0
#define CTRL_REQUEST 1
#define CTRL_DONE 2

// A slot per stub thread. SLOT_SIZE is a power of two and slots are aligned to it, so the stub
// finds its slot from any stack pointer inside it.
#define SLOT_SIZE 0x10000
#define SLOT_MASK 0xffffffffffff0000
#define SLOT_FIRST_OFFSET SLOT_SIZE
#define STUB_MAX_THREADS 512
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
