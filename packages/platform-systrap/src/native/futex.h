// Futex calls on words of the shared region. The region is a MAP_SHARED memfd mapped in two
// processes, so these are the process-shared (non-private) futex operations.
#ifndef TSVISOR_SYSTRAP_FUTEX_H
#define TSVISOR_SYSTRAP_FUTEX_H

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace systrap {

// Sleeps while *word == expected, for at most `timeout_ns` nanoseconds.
inline void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, long timeout_ns) {
  timespec timeout = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &timeout, nullptr, 0);
}

inline void FutexWake(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, 0x7fffffff, nullptr, nullptr, 0);
}

}  // namespace systrap

#endif
