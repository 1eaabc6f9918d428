#ifndef TSVISOR_SYSTRAP_PROBE_H
#define TSVISOR_SYSTRAP_PROBE_H

#include <string>

namespace systrap {

// Returns why systrap cannot run on this host, or an empty string when it can.
std::string ProbeHost();

}  // namespace systrap

#endif
