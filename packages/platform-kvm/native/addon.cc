// The N-API surface of the KVM platform. src/native.ts declares the same functions for TypeScript.
// Objects cross as externals and are freed by the explicit release functions, which the TypeScript
// layer calls from release() and close().
#include <napi.h>

#include <cerrno>
#include <cpuid.h>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <sys/mman.h>
#include <unistd.h>

#include "address_space.h"
#include "vcpu.h"
#include "vm.h"

namespace tsvisor_kvm {
namespace {

struct VcpuHandle {
  Vm* vm = nullptr;
  std::unique_ptr<Vcpu> vcpu;
  Napi::ThreadSafeFunction notify;
  bool referenced = false;
};

template <typename T>
T* Unwrap(const Napi::Value& value, const char* what) {
  if (!value.IsExternal()) throw Napi::TypeError::New(value.Env(), std::string("expected a ") + what + " handle");
  T* object = value.As<Napi::External<T>>().Data();
  if (object == nullptr) throw Napi::Error::New(value.Env(), std::string("the ") + what + " was already released");
  return object;
}

uint64_t ToU64(const Napi::Value& value) { return uint64_t(int64_t(value.As<Napi::Number>().Int64Value())); }

template <typename F>
auto Guard(Napi::Env env, F body) -> decltype(body()) {
  try {
    return body();
  } catch (const KvmError& error) {
    throw Napi::Error::New(env, "kvm: " + error.message);
  }
}

Napi::Value CreateVm(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] { return Napi::External<Vm>::New(info.Env(), new Vm()); });
}

Napi::Value VmFileSpan(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(Unwrap<Vm>(info[0], "VM")->file_span()));
}

Napi::Value CloseVm(const Napi::CallbackInfo& info) {
  delete Unwrap<Vm>(info[0], "VM");
  return info.Env().Undefined();
}

Napi::Value CreateAddressSpace(const Napi::CallbackInfo& info) {
  Vm* vm = Unwrap<Vm>(info[0], "VM");
  return Guard(info.Env(), [&] { return Napi::External<AddressSpace>::New(info.Env(), new AddressSpace(vm)); });
}

Napi::Value ReleaseAddressSpace(const Napi::CallbackInfo& info) {
  delete Unwrap<AddressSpace>(info[0], "address space");
  return info.Env().Undefined();
}

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  auto* as = Unwrap<AddressSpace>(info[0], "address space");
  Guard(info.Env(), [&] {
    as->MapFile(ToU64(info[1]), info[2].As<Napi::Number>().Int32Value(), ToU64(info[3]), ToU64(info[4]),
                info[5].As<Napi::Number>().Uint32Value());
    return 0;
  });
  return info.Env().Undefined();
}

Napi::Value Unmap(const Napi::CallbackInfo& info) {
  auto* as = Unwrap<AddressSpace>(info[0], "address space");
  Guard(info.Env(), [&] {
    as->Unmap(ToU64(info[1]), ToU64(info[2]));
    return 0;
  });
  return info.Env().Undefined();
}

// createVcpu(vm, onExit): onExit is called on the JavaScript thread when a run that returned
// pending has finished.
Napi::Value CreateVcpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Vm* vm = Unwrap<Vm>(info[0], "VM");
  auto handle = std::make_unique<VcpuHandle>();
  handle->notify = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "tsvisor-kvm-vcpu", 0, 1);
  handle->notify.Unref(env);
  VcpuHandle* raw = handle.get();
  handle->vm = vm;
  try {
    handle->vcpu = vm->AcquireVcpu([raw] { raw->notify.NonBlockingCall(); });
  } catch (const KvmError& error) {
    handle->notify.Release();
    throw Napi::Error::New(env, "kvm: " + error.message);
  }
  return Napi::External<VcpuHandle>::New(env, handle.release());
}

Napi::Value ReleaseVcpu(const Napi::CallbackInfo& info) {
  auto* handle = Unwrap<VcpuHandle>(info[0], "vCPU");
  // Parking waits until the vCPU thread has returned from `notify`, and it never calls it again.
  handle->vm->ParkVcpu(std::move(handle->vcpu));
  handle->notify.Release();
  delete handle;
  return info.Env().Undefined();
}

uint8_t* RegistersPointer(const Napi::Value& value) {
  if (!value.IsArrayBuffer()) throw Napi::TypeError::New(value.Env(), "registers must be an ArrayBuffer");
  auto buffer = value.As<Napi::ArrayBuffer>();
  if (buffer.ByteLength() < 256 + 4096) throw Napi::RangeError::New(value.Env(), "registers buffer is too small");
  return static_cast<uint8_t*>(buffer.Data());
}

Napi::Value Result(const Napi::CallbackInfo& info, VcpuHandle* handle, int vector) {
  if (vector == Vcpu::kFailed) throw Napi::Error::New(info.Env(), "kvm: " + handle->vcpu->error());
  if (vector == Vcpu::kPending && !handle->referenced) {
    // Keep Node alive while the application runs, and let it exit when no switch is pending.
    handle->notify.Ref(info.Env());
    handle->referenced = true;
  } else if (vector != Vcpu::kPending && handle->referenced) {
    handle->notify.Unref(info.Env());
    handle->referenced = false;
  }
  return Napi::Number::New(info.Env(), vector);
}

// run(vcpu, addressSpace, addressSpaceId, registers, spinNs): the exit vector, or -1 when the
// exit will be announced through onExit and collected with finish().
Napi::Value Run(const Napi::CallbackInfo& info) {
  auto* handle = Unwrap<VcpuHandle>(info[0], "vCPU");
  auto* as = Unwrap<AddressSpace>(info[1], "address space");
  uint64_t as_id = ToU64(info[2]);
  uint8_t* regs = RegistersPointer(info[3]);
  int64_t spin_ns = info[4].As<Napi::Number>().Int64Value();
  int vector = Guard(info.Env(), [&] { return handle->vcpu->Run(as, as_id, regs, spin_ns); });
  return Result(info, handle, vector);
}

Napi::Value Finish(const Napi::CallbackInfo& info) {
  auto* handle = Unwrap<VcpuHandle>(info[0], "vCPU");
  uint8_t* regs = RegistersPointer(info[1]);
  int vector = Guard(info.Env(), [&] { return handle->vcpu->Finish(regs); });
  return Result(info, handle, vector);
}

Napi::Value TakeInterrupt(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Unwrap<VcpuHandle>(info[0], "vCPU")->vcpu->TakeInterrupt());
}

Napi::Value MaxVcpus(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), Unwrap<Vm>(info[0], "VM")->MaxVcpus());
}

Napi::Value Interrupt(const Napi::CallbackInfo& info) {
  Unwrap<VcpuHandle>(info[0], "vCPU")->vcpu->Interrupt();
  return info.Env().Undefined();
}

// exitInfo(vcpu, out): out[0] = error code, out[1] = CR2, as signed 64-bit values in doubles.
Napi::Value ExitInfo(const Napi::CallbackInfo& info) {
  auto* handle = Unwrap<VcpuHandle>(info[0], "vCPU");
  auto out = info[1].As<Napi::Float64Array>();
  out[0] = double(int64_t(handle->vcpu->exit_error()));
  out[1] = double(int64_t(handle->vcpu->exit_cr2()));
  return info.Env().Undefined();
}

// hostIsVirtualMachine(): whether the CPU reports a hypervisor (CPUID.1:ECX bit 31).
Napi::Value HostIsVirtualMachine(const Napi::CallbackInfo& info) {
  unsigned eax, ebx, ecx, edx;
  __cpuid(1, eax, ebx, ecx, edx);
  return Napi::Boolean::New(info.Env(), (ecx >> 31) & 1);
}

// probe(): an empty string when a guest starts and completes a system call here, else why not.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (access("/dev/kvm", F_OK) != 0) {
    return Napi::String::New(env, "/dev/kvm does not exist: load the kvm module (kvm_intel or kvm_amd) or, in a container, pass the device through");
  }
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    if (error == EACCES || error == EPERM) {
      return Napi::String::New(env, "no permission to open /dev/kvm: add the user to the group that owns it (usually kvm)");
    }
    return Napi::String::New(env, std::string("cannot open /dev/kvm: ") + strerror(error));
  }
  close(fd);

  int memfd = -1;
  try {
    Vm vm;
    AddressSpace as(&vm);
    Vcpu vcpu(&vm, [] {});
    memfd = memfd_create("tsvisor-kvm-probe", MFD_CLOEXEC);
    if (memfd < 0) ThrowErrno("memfd_create");
    if (ftruncate(memfd, 4096) < 0) ThrowErrno("ftruncate");
    const uint8_t code[] = {0x0f, 0x05};  // syscall
    if (pwrite(memfd, code, sizeof code, 0) != sizeof code) ThrowErrno("pwrite");
    constexpr uint64_t kCode = 0x10000000;
    as.MapFile(kCode, memfd, 0, 4096, kAccessRead | kAccessExecute);

    alignas(64) uint8_t regs[256 + 4096] = {};
    uint64_t rip = kCode, rax = 39, eflags = 0x202;
    memcpy(regs + ST_RIP, &rip, 8);
    memcpy(regs + ST_RAX, &rax, 8);
    memcpy(regs + ST_EFLAGS, &eflags, 8);
    uint32_t mxcsr = 0x1f80;
    memcpy(regs + 256 + 24, &mxcsr, 4);
    regs[256] = 0x7f;
    regs[257] = 0x03;
    int vector = vcpu.Run(&as, 1, regs, int64_t(5) * 1000 * 1000 * 1000);
    close(memfd);
    memfd = -1;
    if (vector == Vcpu::kPending) {
      vcpu.Interrupt();
      return Napi::String::New(env, "the guest did not return from its first system call within 5 seconds");
    }
    uint64_t orig_rax;
    memcpy(&orig_rax, regs + ST_ORIG_RAX, 8);
    if (vector != EXIT_SYSCALL || orig_rax != 39) {
      return Napi::String::New(env, "the guest failed its first system call: exit vector " + std::to_string(vector) +
                                        (vector == Vcpu::kFailed ? " (" + vcpu.error() + ")" : ""));
    }
  } catch (const KvmError& error) {
    if (memfd >= 0) close(memfd);
    return Napi::String::New(env, "the guest failed to start: " + error.message);
  }
  return Napi::String::New(env, "");
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports["createVm"] = Napi::Function::New(env, CreateVm);
  exports["closeVm"] = Napi::Function::New(env, CloseVm);
  exports["vmFileSpan"] = Napi::Function::New(env, VmFileSpan);
  exports["createAddressSpace"] = Napi::Function::New(env, CreateAddressSpace);
  exports["releaseAddressSpace"] = Napi::Function::New(env, ReleaseAddressSpace);
  exports["mapFile"] = Napi::Function::New(env, MapFile);
  exports["unmap"] = Napi::Function::New(env, Unmap);
  exports["createVcpu"] = Napi::Function::New(env, CreateVcpu);
  exports["releaseVcpu"] = Napi::Function::New(env, ReleaseVcpu);
  exports["run"] = Napi::Function::New(env, Run);
  exports["finish"] = Napi::Function::New(env, Finish);
  exports["interrupt"] = Napi::Function::New(env, Interrupt);
  exports["takeInterrupt"] = Napi::Function::New(env, TakeInterrupt);
  exports["maxVcpus"] = Napi::Function::New(env, MaxVcpus);
  exports["exitInfo"] = Napi::Function::New(env, ExitInfo);
  exports["hostIsVirtualMachine"] = Napi::Function::New(env, HostIsVirtualMachine);
  exports["probe"] = Napi::Function::New(env, Probe);
  return exports;
}

}  // namespace tsvisor_kvm

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return tsvisor_kvm::Init(env, exports); }

NODE_API_MODULE(tsvisor_platform_kvm, InitAddon)
