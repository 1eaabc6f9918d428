// The memory file: one memfd that contains all application memory. The sentry maps the whole file
// once, shared, so system call arguments are copied with plain memory access, and platforms map
// ranges of the same file into application address spaces.
//
// The mapping reserves `capacity` bytes of address space up front (MAP_NORESERVE, so it costs no
// memory) while the file itself is grown with ftruncate as pages are allocated. Touching the mapping
// beyond the file's size raises SIGBUS, so the TypeScript allocator grows the file before it hands
// out pages. JavaScript sees the mapping as external ArrayBuffers of at most 1 GiB each, which close()
// detaches before unmapping so that no JavaScript view outlives the memory.
#include "addon.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

namespace {

constexpr uint64_t kChunkSize = uint64_t{1} << 30;
constexpr uint64_t kPageSize = 4096;

// MADV_POPULATE_WRITE from <linux/mman.h>, which older C library headers lack.
constexpr int kMadvPopulateWrite = 23;

class MemoryFile : public Napi::ObjectWrap<MemoryFile> {
 public:
  static void Define(Napi::Env env, Napi::Object exports) {
    Napi::Function constructor = DefineClass(env, "MemoryFile", {
      InstanceAccessor<&MemoryFile::Fd>("fd"),
      InstanceAccessor<&MemoryFile::Capacity>("capacity"),
      InstanceMethod<&MemoryFile::Resize>("resize"),
      InstanceMethod<&MemoryFile::Chunk>("chunk"),
      InstanceMethod<&MemoryFile::Decommit>("decommit"),
      InstanceMethod<&MemoryFile::Resident>("resident"),
      InstanceMethod<&MemoryFile::Prefault>("prefault"),
      InstanceMethod<&MemoryFile::AtomicFetch>("atomicFetch"),
      InstanceMethod<&MemoryFile::Close>("close"),
    });
    exports.Set("MemoryFile", constructor);
  }

  // new MemoryFile(name, capacity): creates the memfd and maps `capacity` bytes of it.
  explicit MemoryFile(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MemoryFile>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "MemoryFile(name, capacity): expected a string and a number").ThrowAsJavaScriptException();
      return;
    }
    std::string name = info[0].As<Napi::String>().Utf8Value();
    double capacity = info[1].As<Napi::Number>().DoubleValue();
    if (!(capacity > 0) || capacity > double(uint64_t{1} << 46) || uint64_t(capacity) % kChunkSize != 0) {
      Napi::RangeError::New(env, "MemoryFile capacity must be a positive multiple of 1 GiB below 64 TiB").ThrowAsJavaScriptException();
      return;
    }

    fd_ = memfd_create(name.c_str(), MFD_CLOEXEC);
    if (fd_ < 0) {
      ThrowErrno(env, "memfd_create", errno);
      return;
    }

    capacity_ = uint64_t(capacity);
    void* base = mmap(nullptr, capacity_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
    if (base == MAP_FAILED) {
      int err = errno;
      close(fd_);
      fd_ = -1;
      ThrowErrno(env, "mmap of the memory file", err);
      return;
    }
    base_ = static_cast<uint8_t*>(base);

    // A fork of the sentry (a child_process spawn, for example) must not copy the page tables of
    // the whole reservation, and a core dump of the sentry need not contain application memory.
    madvise(base_, capacity_, MADV_DONTFORK);
    madvise(base_, capacity_, MADV_DONTDUMP);
    chunks_.resize(capacity_ / kChunkSize);
  }

  ~MemoryFile() override { Unmap(); }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  Napi::Value Capacity(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(capacity_)); }

  bool CheckOpen(Napi::Env env) {
    if (fd_ >= 0) return true;
    Napi::Error::New(env, "the memory file is closed").ThrowAsJavaScriptException();
    return false;
  }

  // resize(bytes): sets the file's size; bytes is a multiple of the page size within the capacity.
  Napi::Value Resize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    uint64_t size = uint64_t(info[0].As<Napi::Number>().DoubleValue());
    if (size > capacity_ || size % kPageSize != 0) {
      Napi::RangeError::New(env, "memory file size must be page-aligned and within the capacity").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (ftruncate(fd_, off_t(size)) != 0) {
      ThrowErrno(env, "ftruncate of the memory file", errno);
      return env.Undefined();
    }
    size_ = size;
    return env.Undefined();
  }

  // chunk(index): the ArrayBuffer over bytes [index GiB, (index + 1) GiB) of the mapping.
  Napi::Value Chunk(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    uint32_t index = info[0].As<Napi::Number>().Uint32Value();
    if (index >= chunks_.size()) {
      Napi::RangeError::New(env, "memory file chunk index out of range").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!chunks_[index].IsEmpty() && !chunks_[index].Value().IsEmpty()) return chunks_[index].Value();

    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, base_ + uint64_t(index) * kChunkSize, kChunkSize);
    chunks_[index] = Napi::Weak(buffer);
    return buffer;
  }

  // decommit(offset, length): frees the pages of a range, which then read as zeros.
  Napi::Value Decommit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    uint64_t offset = uint64_t(info[0].As<Napi::Number>().DoubleValue());
    uint64_t length = uint64_t(info[1].As<Napi::Number>().DoubleValue());
    if (offset % kPageSize != 0 || length % kPageSize != 0 || offset + length > capacity_) {
      Napi::RangeError::New(env, "decommit range must be page-aligned and within the capacity").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(offset), off_t(length)) != 0) {
      ThrowErrno(env, "fallocate(PUNCH_HOLE) of the memory file", errno);
    }
    return env.Undefined();
  }

  // prefault(offset, length): allocates host memory for every page of a range now, as mlock and
  // MAP_POPULATE promise, instead of on first write. MADV_POPULATE_WRITE (Linux 5.14) leaves the
  // pages resident as mincore reports them. The fallback, fallocate, only reserves them.
  Napi::Value Prefault(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    uint64_t offset = uint64_t(info[0].As<Napi::Number>().DoubleValue());
    uint64_t length = uint64_t(info[1].As<Napi::Number>().DoubleValue());
    if (offset % kPageSize != 0 || length % kPageSize != 0 || offset + length > capacity_) {
      Napi::RangeError::New(env, "prefault range must be page-aligned and within the capacity").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (madvise(base_ + offset, length, kMadvPopulateWrite) == 0) return env.Undefined();
    if (errno != EINVAL) {
      ThrowErrno(env, "madvise(MADV_POPULATE_WRITE) of the memory file", errno);
      return env.Undefined();
    }
    if (fallocate(fd_, FALLOC_FL_KEEP_SIZE, off_t(offset), off_t(length)) != 0) ThrowErrno(env, "fallocate of the memory file", errno);
    return env.Undefined();
  }

  // resident(offset, length, out): fills out[i] with 1 when page i of the range is in host memory
  // (mincore on the sentry's mapping). Pages allocated but never written are holes, so they read 0.
  Napi::Value Resident(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    uint64_t offset = uint64_t(info[0].As<Napi::Number>().DoubleValue());
    uint64_t length = uint64_t(info[1].As<Napi::Number>().DoubleValue());
    if (!info[2].IsTypedArray() || offset % kPageSize != 0 || length % kPageSize != 0 || offset + length > capacity_) {
      Napi::RangeError::New(env, "resident(offset, length, out): page-aligned range within the capacity and a Uint8Array expected").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Uint8Array out = info[2].As<Napi::Uint8Array>();
    if (out.ElementLength() < length / kPageSize) {
      Napi::RangeError::New(env, "resident: the output array has fewer elements than the range has pages").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (mincore(base_ + offset, length, out.Data()) != 0) ThrowErrno(env, "mincore of the memory file", errno);
    for (size_t i = 0; i < length / kPageSize; i++) out[i] &= 1;
    return env.Undefined();
  }

  // atomicFetch(offset, operation, operand): applies one read-modify-write to the 32-bit word at
  // `offset` with a locked instruction and returns the word's old value as a signed integer.
  // Application threads map the same pages of the memfd, so the update is atomic with respect to
  // their own atomic instructions on other CPUs, which a JavaScript read then write is not.
  // The operations are numbered as AtomicOperation in src/native.ts.
  Napi::Value AtomicFetch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
      Napi::TypeError::New(env, "atomicFetch(offset, operation, operand): expected three numbers").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    double position = info[0].As<Napi::Number>().DoubleValue();
    uint32_t operation = info[1].As<Napi::Number>().Uint32Value();
    uint32_t operand = uint32_t(info[2].As<Napi::Number>().Int32Value());
    // Touching the mapping beyond the file's size raises SIGBUS, so the word must lie below it.
    if (!(position >= 0) || uint64_t(position) % sizeof(uint32_t) != 0 || uint64_t(position) + sizeof(uint32_t) > size_) {
      Napi::RangeError::New(env, "atomicFetch: the offset must be 4-byte aligned and inside the memory file").ThrowAsJavaScriptException();
      return env.Undefined();
    }

    uint32_t* word = reinterpret_cast<uint32_t*>(base_ + uint64_t(position));
    uint32_t old;
    switch (operation) {
      case 0: old = __atomic_exchange_n(word, operand, __ATOMIC_SEQ_CST); break;
      case 1: old = __atomic_fetch_add(word, operand, __ATOMIC_SEQ_CST); break;
      case 2: old = __atomic_fetch_or(word, operand, __ATOMIC_SEQ_CST); break;
      case 3: old = __atomic_fetch_and(word, operand, __ATOMIC_SEQ_CST); break;
      case 4: old = __atomic_fetch_xor(word, operand, __ATOMIC_SEQ_CST); break;
      default:
        Napi::RangeError::New(env, "atomicFetch: the operation must be 0 (exchange), 1 (add), 2 (or), 3 (and) or 4 (xor)").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    return Napi::Number::New(env, int32_t(old));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    for (Napi::Reference<Napi::ArrayBuffer>& chunk : chunks_) {
      if (!chunk.IsEmpty() && !chunk.Value().IsEmpty()) chunk.Value().Detach();
      chunk.Reset();
    }
    Unmap();
    return info.Env().Undefined();
  }

  void Unmap() {
    if (base_ != nullptr) munmap(base_, capacity_);
    base_ = nullptr;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  int fd_ = -1;
  uint8_t* base_ = nullptr;
  uint64_t capacity_ = 0;
  // The memfd's current size, as the last resize() set it.
  uint64_t size_ = 0;
  std::vector<Napi::Reference<Napi::ArrayBuffer>> chunks_;
};

}  // namespace

void InitMemoryFile(Napi::Env env, Napi::Object exports) { MemoryFile::Define(env, exports); }
