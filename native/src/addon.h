// Per-environment state of the addon: the constructors of the wrapped classes and the
// JavaScript error class (N-API instance data, so worker threads get their own).
#pragma once

#include <napi.h>

namespace bpfproxy {

struct AddonData {
  Napi::FunctionReference errorClass;
  Napi::FunctionReference mapClass;
  Napi::FunctionReference programClass;
  Napi::FunctionReference linkClass;
};

// Helpers shared by the wrapped classes.
Napi::Buffer<uint8_t> CopyBuffer(Napi::Env env, const void* data, size_t len);
std::string RequireString(const Napi::Value& v, const char* what);

}  // namespace bpfproxy
