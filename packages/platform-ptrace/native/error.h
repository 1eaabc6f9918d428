// Errors of the ptrace platform's native code. Helpers that have no napi_env throw SystemError.
// The exported functions turn it into a JavaScript Error whose message names the failed host call
// and its errno, with the errno name as its `code`.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

namespace tsvisor_ptrace {

class SystemError : public std::runtime_error {
 public:
  // `what` names the call and the object it acted on, such as "PTRACE_SETREGS of thread 1234".
  SystemError(const std::string& what, int err);
  // An error with no errno, such as an unexpected stop of a stub thread.
  explicit SystemError(const std::string& message);

  int err() const { return err_; }

 private:
  int err_;
};

// Returns "ENOMEM" for ENOMEM, "E<n>" for numbers glibc does not name.
std::string ErrnoName(int err);

// Returns `error` as a JavaScript Error, with `code` and `errno` properties when it has an errno.
Napi::Error ToJs(Napi::Env env, const SystemError& error);

}  // namespace tsvisor_ptrace
