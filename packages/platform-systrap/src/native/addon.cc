// JavaScript bindings of the systrap platform. src/native.ts declares this surface in TypeScript.
// Every method runs on the JavaScript main thread; only ContextCore's waiter thread runs elsewhere
// and it reaches JavaScript through a thread-safe function.
#include <napi.h>

#include <memory>

#include "address_space.h"
#include "context.h"
#include "host_error.h"
#include "layout.h"
#include "probe.h"
#include "timing.h"

namespace systrap {

namespace {

uint64_t MicrosecondsToTicks(const Napi::Value& value) {
  const double microseconds = value.As<Napi::Number>().DoubleValue();
  return static_cast<uint64_t>(microseconds * static_cast<double>(TscTicksPerMicrosecond()));
}

uint64_t ToAddress(const Napi::Value& value) { return static_cast<uint64_t>(value.As<Napi::Number>().DoubleValue()); }

template <typename F>
auto Guard(const Napi::Env& env, F body) -> decltype(body()) {
  try {
    return body();
  } catch (const HostError& error) {
    throw Napi::Error::New(env, error.what());
  } catch (const std::exception& error) {
    throw Napi::Error::New(env, std::string("systrap: ") + error.what());
  }
}

class AddressSpaceWrap : public Napi::ObjectWrap<AddressSpaceWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddressSpace",
                       {
                           InstanceMethod<&AddressSpaceWrap::MapFile>("mapFile"),
                           InstanceMethod<&AddressSpaceWrap::Unmap>("unmap"),
                           InstanceMethod<&AddressSpaceWrap::NewThread>("newThread"),
                           InstanceMethod<&AddressSpaceWrap::ExitThread>("exitThread"),
                           InstanceMethod<&AddressSpaceWrap::Release>("release"),
                           InstanceAccessor<&AddressSpaceWrap::Pid>("pid"),
                       });
  }

  // new AddressSpace(stubSpinMicroseconds, controlSpinMicroseconds)
  explicit AddressSpaceWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddressSpaceWrap>(info) {
    Guard(info.Env(), [&] {
      stub_ = std::make_shared<StubProcess>(StubOptions{MicrosecondsToTicks(info[0]), MicrosecondsToTicks(info[1])});
    });
  }

  const std::shared_ptr<StubProcess>& stub() const { return stub_; }

 private:
  StubProcess& Live(const Napi::Env& env) {
    if (!stub_) throw Napi::Error::New(env, "systrap: the address space was released");
    return *stub_;
  }

  Napi::Value MapFile(const Napi::CallbackInfo& info) {
    StubProcess& stub = Live(info.Env());
    Guard(info.Env(), [&] {
      stub.MapFile(ToAddress(info[0]), info[1].As<Napi::Number>().Int32Value(), ToAddress(info[2]), ToAddress(info[3]),
                   info[4].As<Napi::Number>().Int32Value());
    });
    return info.Env().Undefined();
  }

  Napi::Value Unmap(const Napi::CallbackInfo& info) {
    StubProcess& stub = Live(info.Env());
    Guard(info.Env(), [&] { stub.Unmap(ToAddress(info[0]), ToAddress(info[1])); });
    return info.Env().Undefined();
  }

  Napi::Value NewThread(const Napi::CallbackInfo& info) {
    StubProcess& stub = Live(info.Env());
    return Napi::Number::New(info.Env(), Guard(info.Env(), [&] { return stub.NewThread(); }));
  }

  Napi::Value ExitThread(const Napi::CallbackInfo& info) {
    if (stub_) Guard(info.Env(), [&] { stub_->ExitThread(info[0].As<Napi::Number>().Int32Value()); });
    return info.Env().Undefined();
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    if (stub_) {
      stub_->Kill();
      stub_.reset();
    }
    return info.Env().Undefined();
  }

  Napi::Value Pid(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), stub_ ? stub_->pid() : -1); }

  std::shared_ptr<StubProcess> stub_;
};


class ContextWrap : public Napi::ObjectWrap<ContextWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Context",
                       {
                           InstanceMethod<&ContextWrap::Switch>("switch"),
                           InstanceMethod<&ContextWrap::StartWait>("startWait"),
                           InstanceMethod<&ContextWrap::Complete>("complete"),
                           InstanceMethod<&ContextWrap::Interrupt>("interrupt"),
                           InstanceMethod<&ContextWrap::Release>("release"),
                       });
  }

  // new Context(event: ArrayBuffer, onWake: () => void, spinMicroseconds)
  explicit ContextWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ContextWrap>(info) {
    Napi::Env env = info.Env();
    Napi::ArrayBuffer event = info[0].As<Napi::ArrayBuffer>();
    if (event.ByteLength() < kEventSize) throw Napi::RangeError::New(env, "systrap: the event buffer is too small");
    event_ref_ = Napi::Persistent(event);
    wake_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "tsvisor-systrap-wake", 0, 1);
    wake_.Unref(env);
    Napi::ThreadSafeFunction wake = wake_;
    core_ = std::make_unique<ContextCore>(static_cast<uint8_t*>(event.Data()), MicrosecondsToTicks(info[2]),
                                          [wake]() mutable { wake.NonBlockingCall(); });
  }

  ~ContextWrap() override { Shutdown(); }

 private:
  void Shutdown() {
    if (!core_) return;
    core_->Stop();
    core_.reset();
    wake_.Release();
  }

  ContextCore& Live(const Napi::Env& env) {
    if (!core_) throw Napi::Error::New(env, "systrap: the context was released");
    return *core_;
  }

  static uint8_t* RegistersOf(const Napi::Value& value) {
    return static_cast<uint8_t*>(value.As<Napi::ArrayBuffer>().Data());
  }

  // switch(addressSpace, slot, registers: ArrayBuffer): SwitchKind or -1 for "call startWait".
  Napi::Value Switch(const Napi::CallbackInfo& info) {
    ContextCore& core = Live(info.Env());
    AddressSpaceWrap* as = AddressSpaceWrap::Unwrap(info[0].As<Napi::Object>());
    if (!as->stub()) throw Napi::Error::New(info.Env(), "systrap: the address space was released");
    const int slot = info[1].As<Napi::Number>().Int32Value();
    uint8_t* regs = RegistersOf(info[2]);
    return Napi::Number::New(info.Env(), Guard(info.Env(), [&] { return core.Switch(as->stub(), slot, regs); }));
  }

  Napi::Value StartWait(const Napi::CallbackInfo& info) {
    ContextCore& core = Live(info.Env());
    wake_.Ref(info.Env());
    core.StartWait();
    return info.Env().Undefined();
  }

  Napi::Value Complete(const Napi::CallbackInfo& info) {
    ContextCore& core = Live(info.Env());
    wake_.Unref(info.Env());
    uint8_t* regs = RegistersOf(info[0]);
    return Napi::Number::New(info.Env(), Guard(info.Env(), [&] { return core.Complete(regs); }));
  }

  Napi::Value Interrupt(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), core_ ? core_->Interrupt() : false);
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  std::unique_ptr<ContextCore> core_;
  Napi::ThreadSafeFunction wake_;
  Napi::Reference<Napi::ArrayBuffer> event_ref_;
};

}  // namespace

Napi::Value Probe(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), ProbeHost()); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("AddressSpace", AddressSpaceWrap::Define(env));
  exports.Set("Context", ContextWrap::Define(env));
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("maxUserAddress", Napi::Number::New(env, static_cast<double>(STUB_MAX_USER_ADDRESS)));
  exports.Set("maxThreadsPerAddressSpace", Napi::Number::New(env, STUB_MAX_THREADS));
  exports.Set("eventSize", Napi::Number::New(env, static_cast<double>(kEventSize)));
  return exports;
}

}  // namespace systrap

static Napi::Object InitSystrap(Napi::Env env, Napi::Object exports) { return systrap::Init(env, exports); }

NODE_API_MODULE(systrap, InitSystrap)
