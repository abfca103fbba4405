// Network namespaces and interfaces, as seen by the calling thread.
#pragma once

#include <napi.h>

namespace bpfproxy {

// netnsRun(path, fn): runs fn synchronously with the main thread inside the network namespace at
// `path` (a /run/netns/NAME or /proc/PID/ns/net file), and always switches back. Only synchronous
// work belongs in fn: libuv's threads stay where they are.
Napi::Value NetnsRun(const Napi::CallbackInfo& info);
// ifNameToIndex(name) → ifindex in the calling thread's namespace; ENODEV names the interface.
Napi::Value IfNameToIndex(const Napi::CallbackInfo& info);

}  // namespace bpfproxy
