// An advisory whole-file lock (flock) held by this process: one agent per node.
#pragma once

#include <napi.h>

namespace bpfproxy {

// flockExclusive(path) → fd: opens `path` (a file or a directory) and takes flock(LOCK_EX |
// LOCK_NB) on it. The lock lasts until the fd is closed (flockRelease) or the process ends, however
// it ends. EWOULDBLOCK: another process holds it.
Napi::Value FlockExclusive(const Napi::CallbackInfo& info);
// flockRelease(fd): closes the fd, which drops the lock.
Napi::Value FlockRelease(const Napi::CallbackInfo& info);

}  // namespace bpfproxy
