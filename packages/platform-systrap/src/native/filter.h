// The seccomp programs every stub process and every application thread in it run under.
#ifndef TSVISOR_SYSTRAP_FILTER_H
#define TSVISOR_SYSTRAP_FILTER_H

#include <linux/filter.h>

#include <cstdint>
#include <vector>

namespace systrap {

// Installed by the stub at start-up; covers the control thread's system calls.
std::vector<sock_filter> BuildProcessFilter();

// Installed by each application thread on top of the process program.
std::vector<sock_filter> BuildThreadFilter();

// The only clone flags the process program lets the control thread use.
uint64_t StubThreadCloneFlags();

}  // namespace systrap

#endif
