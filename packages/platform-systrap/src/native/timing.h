// Time-stamp counter helpers for bounded spinning. Spin budgets are in TSC ticks so that both the
// stub (which cannot call clock_gettime through a vDSO it no longer has) and the sentry use one
// cheap clock.
#ifndef TSVISOR_SYSTRAP_TIMING_H
#define TSVISOR_SYSTRAP_TIMING_H

#include <x86intrin.h>

#include <cstdint>

namespace systrap {

inline uint64_t ReadTsc() { return __rdtsc(); }

// TSC ticks per microsecond, measured once per process against CLOCK_MONOTONIC.
uint64_t TscTicksPerMicrosecond();

}  // namespace systrap

#endif
