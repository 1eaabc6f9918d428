// Host file system primitives that Node's fs module lacks or wraps too expensively for the system
// call path. They are openat2 confined beneath a root directory, getdents64 on a directory fd,
// readlink and stat of a path without following any symlink, and terminal ioctls. A poll watch
// on the libuv loop waits for an fd to become readable or writable.
//
// Calls that a system call uses return -errno instead of throwing, so the sentry can hand the
// errno to the application without building an Error. No Linux semantics live here: path
// resolution, symlink following and errno choices are the sentry's (src/vfs).
#include "addon.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_map>

namespace {

// Every path the sentry opens on the host goes through here. The sentry has already followed
// symlinks and removed "..", so the host must follow none: RESOLVE_NO_SYMLINKS makes a symlink
// swapped in by a concurrent host change fail with ELOOP instead of leading outside the root.
constexpr uint64_t kResolveConfined = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

int OpenBeneath(int dirfd, const char* path, int flags) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
  how.resolve = kResolveConfined;
  long fd;
  do {
    fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  } while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : static_cast<int>(fd);
}

// Fields of struct stat in the order src/vfs/host-stat.ts reads them.
void FillStat(const struct stat& st, int64_t* out) {
  out[0] = static_cast<int64_t>(st.st_dev);
  out[1] = static_cast<int64_t>(st.st_ino);
  out[2] = static_cast<int64_t>(st.st_mode);
  out[3] = static_cast<int64_t>(st.st_nlink);
  out[4] = static_cast<int64_t>(st.st_uid);
  out[5] = static_cast<int64_t>(st.st_gid);
  out[6] = static_cast<int64_t>(st.st_rdev);
  out[7] = static_cast<int64_t>(st.st_size);
  out[8] = static_cast<int64_t>(st.st_blksize);
  out[9] = static_cast<int64_t>(st.st_blocks);
  out[10] = static_cast<int64_t>(st.st_atim.tv_sec) * 1000000000 + st.st_atim.tv_nsec;
  out[11] = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  out[12] = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
}

constexpr size_t kStatFields = 13;

bool IsInt(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && info[i].IsNumber(); }

Napi::Value ThrowType(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// A Uint8Array argument as a pointer and length (the view's own offset included).
bool GetBytes(const Napi::CallbackInfo& info, size_t i, uint8_t** data, size_t* length) {
  if (info.Length() <= i || !info[i].IsTypedArray()) return false;
  Napi::TypedArray array = info[i].As<Napi::TypedArray>();
  if (array.TypedArrayType() != napi_uint8_array) return false;
  Napi::Uint8Array bytes = array.As<Napi::Uint8Array>();
  *data = bytes.Data();
  *length = bytes.ByteLength();
  return true;
}

bool GetStatOut(const Napi::CallbackInfo& info, size_t i, int64_t** out) {
  if (info.Length() <= i || !info[i].IsTypedArray()) return false;
  Napi::TypedArray array = info[i].As<Napi::TypedArray>();
  if (array.TypedArrayType() != napi_bigint64_array || array.ElementLength() < kStatFields) return false;
  *out = reinterpret_cast<int64_t*>(static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset());
  return true;
}

// Paths cross into and out of JavaScript as latin1 strings, one character per byte, so file names
// that are not valid UTF-8 survive the round trip unchanged.
std::string Latin1Value(Napi::Value value) {
  size_t length = 0;
  napi_get_value_string_latin1(value.Env(), value, nullptr, 0, &length);
  std::string result(length, '\0');
  napi_get_value_string_latin1(value.Env(), value, result.data(), length + 1, &length);
  return result;
}

Napi::Number Result(Napi::Env env, long value) { return Napi::Number::New(env, static_cast<double>(value)); }

// hostOpenRoot(path): an O_PATH fd of the directory that becomes the sandbox's root, or -errno.
Napi::Value HostOpenRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "hostOpenRoot(path) expects a string");
  std::string path = Latin1Value(info[0]);
  int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  return Result(env, fd < 0 ? -errno : fd);
}

// hostOpenBeneath(dirfd, path, flags): openat2 confined beneath dirfd, following no symlink.
Napi::Value HostOpenBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0) || info.Length() < 2 || !info[1].IsString() || !IsInt(info, 2)) {
    return ThrowType(env, "hostOpenBeneath(dirfd, path, flags) expects a number, a string and a number");
  }
  std::string path = Latin1Value(info[1]);
  int fd = OpenBeneath(info[0].As<Napi::Number>().Int32Value(), path.c_str(), info[2].As<Napi::Number>().Int32Value());
  return Result(env, fd);
}

// hostLstatBeneath(dirfd, path, out): stat of path beneath dirfd without following a final
// symlink; intermediate components must not be symlinks either.
Napi::Value HostLstatBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t* out;
  if (!IsInt(info, 0) || info.Length() < 2 || !info[1].IsString() || !GetStatOut(info, 2, &out)) {
    return ThrowType(env, "hostLstatBeneath(dirfd, path, out) expects a number, a string and a BigInt64Array(13)");
  }
  std::string path = Latin1Value(info[1]);
  int fd = OpenBeneath(info[0].As<Napi::Number>().Int32Value(), path.c_str(), O_PATH | O_NOFOLLOW);
  if (fd < 0) return Result(env, fd);
  struct stat st;
  int rc = fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  int err = errno;
  close(fd);
  if (rc < 0) return Result(env, -err);
  FillStat(st, out);
  return Result(env, 0);
}

// hostReadlinkBeneath(dirfd, path): the target of the symlink at path (a latin1 string), or -errno.
Napi::Value HostReadlinkBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0) || info.Length() < 2 || !info[1].IsString()) {
    return ThrowType(env, "hostReadlinkBeneath(dirfd, path) expects a number and a string");
  }
  std::string path = Latin1Value(info[1]);
  int fd = OpenBeneath(info[0].As<Napi::Number>().Int32Value(), path.c_str(), O_PATH | O_NOFOLLOW);
  if (fd < 0) return Result(env, fd);
  char target[PATH_MAX + 1];
  ssize_t n = readlinkat(fd, "", target, PATH_MAX);
  int err = errno;
  close(fd);
  if (n < 0) return Result(env, -err);
  napi_value result;
  napi_create_string_latin1(env, target, static_cast<size_t>(n), &result);
  return Napi::Value(env, result);
}

// hostFstat(fd, out): 0 or -errno.
Napi::Value HostFstat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t* out;
  if (!IsInt(info, 0) || !GetStatOut(info, 1, &out)) {
    return ThrowType(env, "hostFstat(fd, out) expects a number and a BigInt64Array(13)");
  }
  struct stat st;
  if (fstatat(info[0].As<Napi::Number>().Int32Value(), "", &st, AT_EMPTY_PATH) < 0) return Result(env, -errno);
  FillStat(st, out);
  return Result(env, 0);
}

// Fields of struct statfs in the order src/vfs/statfs.ts reads them; f_fsid takes two.
constexpr size_t kStatfsFields = 12;

bool GetStatfsOut(const Napi::CallbackInfo& info, size_t i, int64_t** out) {
  if (info.Length() <= i || !info[i].IsTypedArray()) return false;
  Napi::TypedArray array = info[i].As<Napi::TypedArray>();
  if (array.TypedArrayType() != napi_bigint64_array || array.ElementLength() < kStatfsFields) return false;
  *out = reinterpret_cast<int64_t*>(static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset());
  return true;
}

void FillStatfs(const struct statfs& st, int64_t* out) {
  out[0] = static_cast<int64_t>(st.f_type);
  out[1] = static_cast<int64_t>(st.f_bsize);
  out[2] = static_cast<int64_t>(st.f_blocks);
  out[3] = static_cast<int64_t>(st.f_bfree);
  out[4] = static_cast<int64_t>(st.f_bavail);
  out[5] = static_cast<int64_t>(st.f_files);
  out[6] = static_cast<int64_t>(st.f_ffree);
  out[7] = st.f_fsid.__val[0];
  out[8] = st.f_fsid.__val[1];
  out[9] = static_cast<int64_t>(st.f_namelen);
  out[10] = static_cast<int64_t>(st.f_frsize);
  out[11] = static_cast<int64_t>(st.f_flags);
}

// hostFstatfs(fd, out): 0 or -errno.
Napi::Value HostFstatfs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t* out;
  if (!IsInt(info, 0) || !GetStatfsOut(info, 1, &out)) {
    return ThrowType(env, "hostFstatfs(fd, out) expects a number and a BigInt64Array(12)");
  }
  struct statfs st;
  if (fstatfs(info[0].As<Napi::Number>().Int32Value(), &st) < 0) return Result(env, -errno);
  FillStatfs(st, out);
  return Result(env, 0);
}

// hostStatfsBeneath(dirfd, path, out): statfs of path beneath dirfd, following no symlink.
Napi::Value HostStatfsBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t* out;
  if (!IsInt(info, 0) || info.Length() < 2 || !info[1].IsString() || !GetStatfsOut(info, 2, &out)) {
    return ThrowType(env, "hostStatfsBeneath(dirfd, path, out) expects a number, a string and a BigInt64Array(12)");
  }
  std::string path = Latin1Value(info[1]);
  int fd = OpenBeneath(info[0].As<Napi::Number>().Int32Value(), path.c_str(), O_PATH | O_NOFOLLOW);
  if (fd < 0) return Result(env, fd);
  struct statfs st;
  int rc = fstatfs(fd, &st);
  int err = errno;
  close(fd);
  if (rc < 0) return Result(env, -err);
  FillStatfs(st, out);
  return Result(env, 0);
}

// hostGetdents64(fd, buffer): bytes of struct linux_dirent64 written, 0 at the end, or -errno.
Napi::Value HostGetdents64(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t length;
  if (!IsInt(info, 0) || !GetBytes(info, 1, &data, &length)) {
    return ThrowType(env, "hostGetdents64(fd, buffer) expects a number and a Uint8Array");
  }
  long n = syscall(SYS_getdents64, info[0].As<Napi::Number>().Int32Value(), data, length);
  return Result(env, n < 0 ? -errno : n);
}

// hostPread(fd, buffer, position): read(2) when position is -1, pread(2) otherwise.
Napi::Value HostPread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t length;
  if (!IsInt(info, 0) || !GetBytes(info, 1, &data, &length) || !IsInt(info, 2)) {
    return ThrowType(env, "hostPread(fd, buffer, position) expects a number, a Uint8Array and a number");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int64_t position = info[2].As<Napi::Number>().Int64Value();
  ssize_t n;
  do {
    n = position < 0 ? read(fd, data, length) : pread(fd, data, length, position);
  } while (n < 0 && errno == EINTR);
  return Result(env, n < 0 ? -errno : n);
}

// Writes to a host descriptor without raising SIGPIPE in this process. A write to a pipe whose
// reader has gone sends SIGPIPE to the writing thread. runsc passes every SIGPIPE it receives on to
// the program, and the sentry already gives the application EPIPE and its own SIGPIPE, so this one
// must not reach runsc's listener. The signal is blocked on this thread during the write, and the
// one the write raised is removed from the thread's pending set before it is unblocked. A SIGPIPE
// sent with kill(2) is directed at the process, so another thread that does not block it takes it.
ssize_t WriteWithoutSigpipe(int fd, const uint8_t* data, size_t length, int64_t position) {
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &pipe_only, &previous);
  sigset_t pending;
  sigpending(&pending);
  const bool already_pending = sigismember(&pending, SIGPIPE) == 1;

  ssize_t n;
  do {
    n = position < 0 ? write(fd, data, length) : pwrite(fd, data, length, position);
  } while (n < 0 && errno == EINTR);
  const int saved_errno = errno;

  if (n < 0 && saved_errno == EPIPE && !already_pending) {
    const struct timespec no_wait = {0, 0};
    while (sigtimedwait(&pipe_only, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  errno = saved_errno;
  return n;
}

// hostPwrite(fd, buffer, position): write(2) when position is -1, pwrite(2) otherwise.
Napi::Value HostPwrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t length;
  if (!IsInt(info, 0) || !GetBytes(info, 1, &data, &length) || !IsInt(info, 2)) {
    return ThrowType(env, "hostPwrite(fd, buffer, position) expects a number, a Uint8Array and a number");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int64_t position = info[2].As<Napi::Number>().Int64Value();
  ssize_t n = WriteWithoutSigpipe(fd, data, length, position);
  return Result(env, n < 0 ? -errno : n);
}

// hostRecv(fd, buffer) and hostSend(fd, buffer): non-blocking socket I/O (MSG_DONTWAIT) that
// leaves the shared socket's O_NONBLOCK flag alone.
Napi::Value HostRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t length;
  if (!IsInt(info, 0) || !GetBytes(info, 1, &data, &length)) {
    return ThrowType(env, "hostRecv(fd, buffer) expects a number and a Uint8Array");
  }
  ssize_t n;
  do {
    n = recv(info[0].As<Napi::Number>().Int32Value(), data, length, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return Result(env, n < 0 ? -errno : n);
}

Napi::Value HostSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t length;
  if (!IsInt(info, 0) || !GetBytes(info, 1, &data, &length)) {
    return ThrowType(env, "hostSend(fd, buffer) expects a number and a Uint8Array");
  }
  ssize_t n;
  do {
    n = send(info[0].As<Napi::Number>().Int32Value(), data, length, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return Result(env, n < 0 ? -errno : n);
}

// hostLseek(fd, offset, whence): the new offset or -errno.
Napi::Value HostLseek(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0) || !IsInt(info, 1) || !IsInt(info, 2)) {
    return ThrowType(env, "hostLseek(fd, offset, whence) expects three numbers");
  }
  off_t r = lseek(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int64Value(),
                  info[2].As<Napi::Number>().Int32Value());
  return Result(env, r < 0 ? -errno : r);
}

// hostClose(fd): 0 or -errno.
Napi::Value HostClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0)) return ThrowType(env, "hostClose(fd) expects a number");
  return Result(env, close(info[0].As<Napi::Number>().Int32Value()) < 0 ? -errno : 0);
}

// hostDup(fd): a close-on-exec duplicate numbered 3 or above, so it never lands on stdio.
Napi::Value HostDup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0)) return ThrowType(env, "hostDup(fd) expects a number");
  int fd = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 3);
  return Result(env, fd < 0 ? -errno : fd);
}

// hostGetFl(fd): the status flags (F_GETFL) or -errno.
Napi::Value HostGetFl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0)) return ThrowType(env, "hostGetFl(fd) expects a number");
  int flags = fcntl(info[0].As<Napi::Number>().Int32Value(), F_GETFL);
  return Result(env, flags < 0 ? -errno : flags);
}

// hostReopen(fd, flags): a new open file description of the pipe, FIFO or terminal behind fd,
// through /proc/self/fd, so O_NONBLOCK can be set on it without changing the description that
// other processes share. -errno where the kernel refuses (sockets, deleted files).
Napi::Value HostReopen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0) || !IsInt(info, 1)) return ThrowType(env, "hostReopen(fd, flags) expects two numbers");
  std::string path = "/proc/self/fd/" + std::to_string(info[0].As<Napi::Number>().Int32Value());
  int fd = open(path.c_str(), info[1].As<Napi::Number>().Int32Value() | O_CLOEXEC | O_NOCTTY);
  return Result(env, fd < 0 ? -errno : fd);
}

// hostTcgets(fd, out): the kernel's struct termios (36 bytes on x86-64, smaller than glibc's) or -errno.
Napi::Value HostTcgets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t length;
  constexpr size_t kKernelTermiosSize = 36;
  if (!IsInt(info, 0) || !GetBytes(info, 1, &data, &length) || length < kKernelTermiosSize) {
    return ThrowType(env, "hostTcgets(fd, out) expects a number and a Uint8Array of at least 36 bytes");
  }
  uint8_t termios[64];
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), TCGETS, termios) < 0) return Result(env, -errno);
  memcpy(data, termios, kKernelTermiosSize);
  return Result(env, 0);
}

// hostGetWinsize(fd, out): struct winsize (8 bytes) or -errno.
Napi::Value HostGetWinsize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t length;
  if (!IsInt(info, 0) || !GetBytes(info, 1, &data, &length) || length < sizeof(struct winsize)) {
    return ThrowType(env, "hostGetWinsize(fd, out) expects a number and a Uint8Array of at least 8 bytes");
  }
  struct winsize ws;
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), TIOCGWINSZ, &ws) < 0) return Result(env, -errno);
  memcpy(data, &ws, sizeof ws);
  return Result(env, 0);
}

// hostTcsets(fd, request, termios): sets the kernel's struct termios (36 bytes) with TCSETS,
// TCSETSW or TCSETSF, or returns -errno. Only these three requests are accepted, so this cannot
// become a general ioctl passthrough.
Napi::Value HostTcsets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t length;
  constexpr size_t kKernelTermiosSize = 36;
  if (!IsInt(info, 0) || !IsInt(info, 1) || !GetBytes(info, 2, &data, &length) || length < kKernelTermiosSize) {
    return ThrowType(env, "hostTcsets(fd, request, termios) expects two numbers and a Uint8Array of at least 36 bytes");
  }
  unsigned long request = static_cast<unsigned long>(info[1].As<Napi::Number>().Uint32Value());
  if (request != TCSETS && request != TCSETSW && request != TCSETSF) {
    return ThrowType(env, "hostTcsets(fd, request, termios): request must be TCSETS, TCSETSW or TCSETSF");
  }
  uint8_t termios[64];
  memset(termios, 0, sizeof termios);
  memcpy(termios, data, kKernelTermiosSize);
  int rc;
  do {
    rc = ioctl(info[0].As<Napi::Number>().Int32Value(), request, termios);
  } while (rc < 0 && errno == EINTR);
  return Result(env, rc < 0 ? -errno : 0);
}

// hostSetWinsize(fd, winsize): sets struct winsize (8 bytes) with TIOCSWINSZ, or returns -errno.
Napi::Value HostSetWinsize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t length;
  if (!IsInt(info, 0) || !GetBytes(info, 1, &data, &length) || length < sizeof(struct winsize)) {
    return ThrowType(env, "hostSetWinsize(fd, winsize) expects a number and a Uint8Array of at least 8 bytes");
  }
  struct winsize ws;
  memcpy(&ws, data, sizeof ws);
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), TIOCSWINSZ, &ws) < 0) return Result(env, -errno);
  return Result(env, 0);
}

// hostTcflsh(fd, queue): discards queued input and/or output (TCFLSH), or returns -errno.
Napi::Value HostTcflsh(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0) || !IsInt(info, 1)) return ThrowType(env, "hostTcflsh(fd, queue) expects two numbers");
  long queue = info[1].As<Napi::Number>().Int32Value();
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), TCFLSH, queue) < 0) return Result(env, -errno);
  return Result(env, 0);
}

// hostTcxonc(fd, action): suspends or resumes output or input (TCXONC), or returns -errno.
Napi::Value HostTcxonc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0) || !IsInt(info, 1)) return ThrowType(env, "hostTcxonc(fd, action) expects two numbers");
  long action = info[1].As<Napi::Number>().Int32Value();
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), TCXONC, action) < 0) return Result(env, -errno);
  return Result(env, 0);
}

// hostOutq(fd): the bytes written but not yet sent (TIOCOUTQ), or -errno.
Napi::Value HostOutq(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0)) return ThrowType(env, "hostOutq(fd) expects a number");
  int queued = 0;
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), TIOCOUTQ, &queued) < 0) return Result(env, -errno);
  return Result(env, queued);
}

// hostFionread(fd): the bytes ready to read (ioctl FIONREAD), or -errno.
Napi::Value HostFionread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0)) return ThrowType(env, "hostFionread(fd) expects a number");
  int available = 0;
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), FIONREAD, &available) < 0) return Result(env, -errno);
  return Result(env, available);
}

// hostPoll(fd, events): the ready events right now (poll with a zero timeout), or -errno.
Napi::Value HostPoll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0) || !IsInt(info, 1)) return ThrowType(env, "hostPoll(fd, events) expects two numbers");
  struct pollfd pfd = {info[0].As<Napi::Number>().Int32Value(), static_cast<short>(info[1].As<Napi::Number>().Int32Value()), 0};
  int rc;
  do {
    rc = poll(&pfd, 1, 0);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return Result(env, -errno);
  return Result(env, rc == 0 ? 0 : pfd.revents);
}

// Waiting for readiness on the libuv loop: the thread that runs JavaScript keeps running, and
// no thread hop is paid. The watch polls a duplicate of the fd, because libuv allows one poll
// handle per fd number and Node may already watch the original (process.stdout on a pipe).
struct FdWatch {
  uv_poll_t handle;
  int fd;
  uint32_t id;
  napi_env env;
  Napi::FunctionReference callback;
};

std::unordered_map<uint32_t, FdWatch*> watches;
uint32_t nextWatchId = 1;

void OnWatchClosed(uv_handle_t* handle) {
  FdWatch* watch = static_cast<FdWatch*>(handle->data);
  close(watch->fd);
  delete watch;
}

void StopWatch(FdWatch* watch) {
  watches.erase(watch->id);
  uv_poll_stop(&watch->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&watch->handle), OnWatchClosed);
}

void OnWatchReady(uv_poll_t* handle, int status, int events) {
  FdWatch* watch = static_cast<FdWatch*>(handle->data);
  Napi::Env env(watch->env);
  Napi::FunctionReference callback = std::move(watch->callback);
  StopWatch(watch);

  // libuv reports errors as negative errno values on Linux, which is the convention here too.
  Napi::HandleScope scope(env);
  callback.MakeCallback(env.Global(), {Napi::Number::New(env, status < 0 ? status : events)});
}

// hostWatchFd(fd, events, callback): calls callback(revents or -errno) once when fd is ready.
// Returns a watch id for hostUnwatchFd, or -errno when the watch cannot start (regular files
// cannot be polled with epoll: EPERM).
Napi::Value HostWatchFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0) || !IsInt(info, 1) || info.Length() < 3 || !info[2].IsFunction()) {
    return ThrowType(env, "hostWatchFd(fd, events, callback) expects two numbers and a function");
  }
  uv_loop_t* loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return Result(env, -EINVAL);

  int fd = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) return Result(env, -errno);
  FdWatch* watch = new FdWatch();
  watch->fd = fd;
  watch->env = env;
  int rc = uv_poll_init(loop, &watch->handle, fd);
  if (rc < 0) {
    close(fd);
    delete watch;
    return Result(env, rc);
  }
  watch->handle.data = watch;
  int uvEvents = 0;
  int events = info[1].As<Napi::Number>().Int32Value();
  if (events & POLLIN) uvEvents |= UV_READABLE;
  if (events & POLLOUT) uvEvents |= UV_WRITABLE;
  rc = uv_poll_start(&watch->handle, uvEvents, OnWatchReady);
  if (rc < 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&watch->handle), OnWatchClosed);
    return Result(env, rc);
  }
  watch->id = nextWatchId++;
  watch->callback = Napi::Persistent(info[2].As<Napi::Function>());
  watches[watch->id] = watch;
  return Result(env, watch->id);
}

// hostUnwatchFd(id): stops a watch without calling its callback; unknown ids are ignored.
Napi::Value HostUnwatchFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsInt(info, 0)) return ThrowType(env, "hostUnwatchFd(id) expects a number");
  auto it = watches.find(info[0].As<Napi::Number>().Uint32Value());
  if (it != watches.end()) {
    it->second->callback.Reset();
    StopWatch(it->second);
  }
  return env.Undefined();
}

}  // namespace

void InitHostFs(Napi::Env env, Napi::Object exports) {
  exports.Set("hostOpenRoot", Napi::Function::New(env, HostOpenRoot));
  exports.Set("hostOpenBeneath", Napi::Function::New(env, HostOpenBeneath));
  exports.Set("hostLstatBeneath", Napi::Function::New(env, HostLstatBeneath));
  exports.Set("hostReadlinkBeneath", Napi::Function::New(env, HostReadlinkBeneath));
  exports.Set("hostFstat", Napi::Function::New(env, HostFstat));
  exports.Set("hostFstatfs", Napi::Function::New(env, HostFstatfs));
  exports.Set("hostStatfsBeneath", Napi::Function::New(env, HostStatfsBeneath));
  exports.Set("hostGetdents64", Napi::Function::New(env, HostGetdents64));
  exports.Set("hostPread", Napi::Function::New(env, HostPread));
  exports.Set("hostPwrite", Napi::Function::New(env, HostPwrite));
  exports.Set("hostRecv", Napi::Function::New(env, HostRecv));
  exports.Set("hostSend", Napi::Function::New(env, HostSend));
  exports.Set("hostLseek", Napi::Function::New(env, HostLseek));
  exports.Set("hostClose", Napi::Function::New(env, HostClose));
  exports.Set("hostDup", Napi::Function::New(env, HostDup));
  exports.Set("hostGetFl", Napi::Function::New(env, HostGetFl));
  exports.Set("hostReopen", Napi::Function::New(env, HostReopen));
  exports.Set("hostTcgets", Napi::Function::New(env, HostTcgets));
  exports.Set("hostGetWinsize", Napi::Function::New(env, HostGetWinsize));
  exports.Set("hostTcsets", Napi::Function::New(env, HostTcsets));
  exports.Set("hostSetWinsize", Napi::Function::New(env, HostSetWinsize));
  exports.Set("hostTcflsh", Napi::Function::New(env, HostTcflsh));
  exports.Set("hostTcxonc", Napi::Function::New(env, HostTcxonc));
  exports.Set("hostOutq", Napi::Function::New(env, HostOutq));
  exports.Set("hostPoll", Napi::Function::New(env, HostPoll));
  exports.Set("hostFionread", Napi::Function::New(env, HostFionread));
  exports.Set("hostWatchFd", Napi::Function::New(env, HostWatchFd));
  exports.Set("hostUnwatchFd", Napi::Function::New(env, HostUnwatchFd));
}
