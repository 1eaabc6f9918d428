// Host call failures, carried to JavaScript as one-line errors that name the call and errno.
#ifndef TSVISOR_SYSTRAP_HOST_ERROR_H
#define TSVISOR_SYSTRAP_HOST_ERROR_H

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace systrap {

class HostError : public std::runtime_error {
 public:
  HostError(const std::string& call, int error)
      : std::runtime_error(call + " failed: " + ErrnoName(error) + " (" + std::strerror(error) + ")"), error_(error) {}

  explicit HostError(const std::string& message) : std::runtime_error(message), error_(0) {}

  int error() const { return error_; }

  static std::string ErrnoName(int error) {
    const char* name = strerrorname_np(error);
    return name != nullptr ? name : "errno " + std::to_string(error);
  }

 private:
  int error_;
};

}  // namespace systrap

#endif
