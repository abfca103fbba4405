#include "errors.h"

#include <errno.h>
#include <string.h>

#include "addon.h"

namespace bpfproxy {

void ThrowSys(int err, std::string call, std::string message) {
  throw SysError{err < 0 ? -err : err, std::move(call), std::move(message)};
}

int CheckRet(int ret, const char* call, const std::string& what) {
  if (ret < 0) {
    int err = errno != 0 && ret == -1 ? errno : -ret;
    ThrowSys(err, call, what);
  }
  return ret;
}

static std::string Hint(int err) {
  switch (err) {
    case EPERM:
    case EACCES:
      return " (bpfproxy needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)";
    case ENODEV:
      return " (no such network interface in this network namespace)";
    default:
      return "";
  }
}

Napi::Error ToJsError(Napi::Env env, const SysError& e) {
  const char* code = strerrorname_np(e.err);
  std::string text = e.message + ": " + e.call + ": " + strerror(e.err) + Hint(e.err);
  Napi::Object props = Napi::Object::New(env);
  props.Set("errno", Napi::Number::New(env, e.err));
  props.Set("code", Napi::String::New(env, code ? code : "EUNKNOWN"));
  props.Set("call", Napi::String::New(env, e.call));
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->errorClass.IsEmpty()) {
    Napi::Object err = data->errorClass.Value().New({Napi::String::New(env, text), props});
    return Napi::Error(env, err);
  }
  Napi::Error err = Napi::Error::New(env, text);
  err.Value().Set("errno", props.Get("errno"));
  err.Value().Set("code", props.Get("code"));
  err.Value().Set("call", props.Get("call"));
  return err;
}

void RegisterErrorClass(const Napi::CallbackInfo& info) {
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  data->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
}

}  // namespace bpfproxy
