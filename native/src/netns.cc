#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include "addon.h"
#include "errors.h"

namespace bpfproxy {

Napi::Value NetnsRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = RequireString(info[0], "namespace path");
  Napi::Function fn = info[1].As<Napi::Function>();
  int self = -1, target = -1;
  Guard(env, [&] {
    self = CheckRet(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), "open", "opening this thread's network namespace");
    target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      int err = errno;
      close(self);
      ThrowSys(err, "open", "opening network namespace " + path);
    }
    if (setns(target, CLONE_NEWNET) < 0) {
      int err = errno;
      close(self);
      close(target);
      ThrowSys(err, "setns", "entering network namespace " + path);
    }
    close(target);
  });
  Napi::Value result;
  try {
    result = fn.Call({});
  } catch (...) {
    setns(self, CLONE_NEWNET);
    close(self);
    throw;
  }
  int back = setns(self, CLONE_NEWNET);
  close(self);
  if (back < 0) Napi::Error::Fatal("netnsRun", "could not return to the original network namespace");
  return result;
}

Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  std::string name = RequireString(info[0], "interface name");
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) {
    int err = errno;
    Guard(info.Env(), [&] { ThrowSys(err == 0 ? ENODEV : err, "if_nametoindex", "looking up interface '" + name + "'"); });
  }
  return Napi::Number::New(info.Env(), idx);
}

}  // namespace bpfproxy
