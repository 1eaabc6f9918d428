#include "addon.h"

#include <cerrno>
#include <cstring>

void ThrowErrno(Napi::Env env, const char* call, int err) {
  const char* name = strerrorname_np(err);
  std::string code = name != nullptr ? name : "E" + std::to_string(err);
  std::string message = std::string(call) + " failed: " + code + " (" + strerror(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, err));
  error.ThrowAsJavaScriptException();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitMemoryFile(env, exports);
  InitHostFs(env, exports);
  return exports;
}

NODE_API_MODULE(sentry, Init)
