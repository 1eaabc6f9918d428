#include "timing.h"

#include <time.h>

namespace systrap {

namespace {

uint64_t MonotonicNanoseconds() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
}

}  // namespace

uint64_t TscTicksPerMicrosecond() {
  static uint64_t ticks = 0;
  if (ticks != 0) return ticks;

  // Two milliseconds of busy waiting keeps the error well under one percent.
  const uint64_t start_ns = MonotonicNanoseconds();
  const uint64_t start_tsc = ReadTsc();
  uint64_t now_ns = start_ns;
  while (now_ns - start_ns < 2000000) now_ns = MonotonicNanoseconds();
  const uint64_t elapsed_tsc = ReadTsc() - start_tsc;

  ticks = elapsed_tsc * 1000 / (now_ns - start_ns);
  if (ticks == 0) ticks = 1;
  return ticks;
}

}  // namespace systrap
