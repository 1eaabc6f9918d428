#include "error.h"

#include <cstring>

namespace tsvisor_ptrace {

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "E" + std::to_string(err);
}

SystemError::SystemError(const std::string& what, int err)
    : std::runtime_error(what + " failed: " + ErrnoName(err) + " (" + strerror(err) + ")"), err_(err) {}

SystemError::SystemError(const std::string& message) : std::runtime_error(message), err_(0) {}

Napi::Error ToJs(Napi::Env env, const SystemError& error) {
  Napi::Error js = Napi::Error::New(env, error.what());
  if (error.err() != 0) {
    js.Set("code", Napi::String::New(env, ErrnoName(error.err())));
    js.Set("errno", Napi::Number::New(env, error.err()));
  }
  return js;
}

}  // namespace tsvisor_ptrace
