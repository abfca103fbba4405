// Kernel and libbpf failures, carried as C++ exceptions inside the addon and turned into the
// JavaScript BpfError class (errno, code, call) at the N-API boundary.
#pragma once

#include <napi.h>

#include <string>

namespace bpfproxy {

// A failed call: `err` is a positive errno, `call` the libbpf or kernel call that failed,
// `message` says what was being done, in operator terms.
struct SysError {
  int err;
  std::string call;
  std::string message;
};

[[noreturn]] void ThrowSys(int err, std::string call, std::string message);

// libbpf returns -errno (and sets errno); this throws when `ret` is negative.
int CheckRet(int ret, const char* call, const std::string& what);

// The JavaScript error for a SysError, an instance of the registered BpfError class.
Napi::Error ToJsError(Napi::Env env, const SysError& e);

// Registers the class BpfError instances are made from (called once by ts/addon).
void RegisterErrorClass(const Napi::CallbackInfo& info);

// Wraps a callback body: SysError becomes a thrown BpfError.
template <typename F>
auto Guard(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const SysError& e) {
    throw ToJsError(env, e);
  }
}

}  // namespace bpfproxy
