// KVM ioctl numbers whose argument struct ends in a flexible array. <linux/kvm.h> declares those
// arrays with __DECLARE_FLEX_ARRAY, which has a non-zero size in C++, so the header's own macros
// encode a size the kernel rejects with EINVAL. These use the C sizes.
#pragma once

#include <linux/kvm.h>

namespace tsvisor_kvm {

constexpr unsigned long kKvmGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, 8);
constexpr unsigned long kKvmSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, 8);
constexpr unsigned long kKvmSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, 8);
constexpr unsigned long kKvmGetXsave = _IOC(_IOC_READ, KVMIO, 0xa4, 4096);

}  // namespace tsvisor_kvm
