// The stub's machine code: position-independent assembly that the sentry copies into every stub
// process. See stub.cc for how a stub starts and how its signal handler talks to the sentry.
#ifndef TSVISOR_SYSTRAP_STUB_H
#define TSVISOR_SYSTRAP_STUB_H

#include <cstddef>

#include "layout.h"

extern "C" {
extern const char tsvisor_systrap_stub_start[];
extern const char tsvisor_systrap_stub_stage2[];
extern const char tsvisor_systrap_stub_end[];

// Addresses just after each syscall instruction of the stub. Seccomp reports that address as the
// instruction pointer of the call.
extern const char tsvisor_systrap_site_get_fs[];
extern const char tsvisor_systrap_site_get_gs[];
extern const char tsvisor_systrap_site_event_wake[];
extern const char tsvisor_systrap_site_event_yield[];
extern const char tsvisor_systrap_site_event_wait[];
extern const char tsvisor_systrap_site_set_fs[];
extern const char tsvisor_systrap_site_set_gs[];
extern const char tsvisor_systrap_site_thread_exit[];
extern const char tsvisor_systrap_site_sigreturn[];
extern const char tsvisor_systrap_site_altstack[];
extern const char tsvisor_systrap_site_thread_filter[];
extern const char tsvisor_systrap_site_fail[];
extern const char tsvisor_systrap_site_ctrl_yield[];
extern const char tsvisor_systrap_site_ctrl_wait[];
extern const char tsvisor_systrap_site_ctrl_request[];
extern const char tsvisor_systrap_site_ctrl_wake[];
}

namespace systrap {

inline size_t StubCodeLength() { return tsvisor_systrap_stub_end - tsvisor_systrap_stub_start; }
inline size_t StubStage2Offset() { return tsvisor_systrap_stub_stage2 - tsvisor_systrap_stub_start; }

// Returns the address of `site` in a running stub, whose code lies at STUB_CODE_ADDRESS.
inline unsigned long long StubSiteAddress(const char* site) {
  return STUB_CODE_ADDRESS + static_cast<unsigned long long>(site - tsvisor_systrap_stub_start);
}

}  // namespace systrap

#endif
