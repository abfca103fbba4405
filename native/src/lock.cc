#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "addon.h"
#include "errors.h"

namespace bpfproxy {

Napi::Value FlockExclusive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = RequireString(info[0], "lock path");
  int fd = -1;
  Guard(env, [&] {
    fd = CheckRet(open(path.c_str(), O_RDONLY | O_CLOEXEC), "open", "opening " + path + " to lock it");
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
      int err = errno;
      close(fd);
      ThrowSys(err, "flock", "locking " + path);
    }
  });
  return Napi::Number::New(env, fd);
}

Napi::Value FlockRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  Guard(env, [&] { CheckRet(close(fd), "close", "releasing a lock"); });
  return env.Undefined();
}

}  // namespace bpfproxy
