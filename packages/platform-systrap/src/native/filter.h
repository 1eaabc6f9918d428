// The seccomp program every stub thread runs under.
#ifndef TSVISOR_SYSTRAP_FILTER_H
#define TSVISOR_SYSTRAP_FILTER_H

#include <linux/filter.h>

#include <vector>

namespace systrap {

std::vector<sock_filter> BuildStubFilter();

}  // namespace systrap

#endif
