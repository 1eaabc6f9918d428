// Entry point of the ptrace platform's addon. src/native.ts types everything exported here.
#include <napi.h>

#include "context.h"
#include "error.h"
#include "stub-image.h"
#include "stub.h"

namespace tsvisor_ptrace {

namespace {

uint64_t ToU64(const Napi::Value& value) { return static_cast<uint64_t>(value.As<Napi::Number>().DoubleValue()); }

pid_t ToPid(const Napi::Value& value) { return value.As<Napi::Number>().Int32Value(); }

// Runs `body`, turning a SystemError into a JavaScript exception.
template <typename Body>
auto Guard(Napi::Env env, Body body) -> decltype(body()) {
  try {
    return body();
  } catch (const SystemError& error) {
    throw ToJs(env, error);
  }
}

// probe(): string. Starts and kills a stub; returns "" when that works, else what failed.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  try {
    KillStub(CreateStub());
    return Napi::String::New(info.Env(), "");
  } catch (const SystemError& error) {
    return Napi::String::New(info.Env(), error.what());
  }
}

Napi::Value CreateStubJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] { return Napi::Number::New(info.Env(), CreateStub()); });
}

// stubMapFile(pid, addr, fd, offset, length, prot)
void StubMapFileJs(const Napi::CallbackInfo& info) {
  Guard(info.Env(), [&] {
    StubMapFile(FindStub(ToPid(info[0])), ToU64(info[1]), info[2].As<Napi::Number>().Int32Value(), ToU64(info[3]),
                ToU64(info[4]), info[5].As<Napi::Number>().Int32Value());
  });
}

// stubUnmap(pid, addr, length)
void StubUnmapJs(const Napi::CallbackInfo& info) {
  Guard(info.Env(), [&] { StubUnmap(FindStub(ToPid(info[0])), ToU64(info[1]), ToU64(info[2])); });
}

Napi::Value StubCloneThreadJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] { return Napi::Number::New(info.Env(), StubCloneThread(FindStub(ToPid(info[0])))); });
}

// stubExitThread(pid, tid)
void StubExitThreadJs(const Napi::CallbackInfo& info) {
  Guard(info.Env(), [&] { StubExitThread(FindStub(ToPid(info[0])), ToPid(info[1])); });
}

void KillStubJs(const Napi::CallbackInfo& info) {
  Guard(info.Env(), [&] { KillStub(ToPid(info[0])); });
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New<Probe>(env, "probe"));
  exports.Set("createStub", Napi::Function::New<CreateStubJs>(env, "createStub"));
  exports.Set("stubMapFile", Napi::Function::New<StubMapFileJs>(env, "stubMapFile"));
  exports.Set("stubUnmap", Napi::Function::New<StubUnmapJs>(env, "stubUnmap"));
  exports.Set("stubCloneThread", Napi::Function::New<StubCloneThreadJs>(env, "stubCloneThread"));
  exports.Set("stubExitThread", Napi::Function::New<StubExitThreadJs>(env, "stubExitThread"));
  exports.Set("killStub", Napi::Function::New<KillStubJs>(env, "killStub"));
  exports.Set("NativeContext", NativeContext::Define(env));
  exports.Set("stubBase", Napi::Number::New(env, static_cast<double>(kStubBase)));
  return exports;
}

}  // namespace tsvisor_ptrace

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return tsvisor_ptrace::Init(env, exports); }

NODE_API_MODULE(tsvisor_ptrace, InitAddon)
