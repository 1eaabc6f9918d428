// The stub's machine code: position-independent assembly that the sentry copies into every stub
// process. See stub.cc for how a stub starts and how its signal handler talks to the sentry.
#ifndef TSVISOR_SYSTRAP_STUB_H
#define TSVISOR_SYSTRAP_STUB_H

#include <cstddef>

extern "C" {
extern const char tsvisor_systrap_stub_start[];
extern const char tsvisor_systrap_stub_stage2[];
extern const char tsvisor_systrap_stub_end[];
}

namespace systrap {

inline size_t StubCodeLength() { return tsvisor_systrap_stub_end - tsvisor_systrap_stub_start; }
inline size_t StubStage2Offset() { return tsvisor_systrap_stub_stage2 - tsvisor_systrap_stub_start; }

}  // namespace systrap

#endif
