// BpfProgram: one loaded BPF program file descriptor, owned; runs packets through
// BPF_PROG_TEST_RUN and can be pinned.
#pragma once

#include <napi.h>

#include <string>

namespace bpfproxy {

class BpfProgram : public Napi::ObjectWrap<BpfProgram> {
 public:
  static Napi::Function Init(Napi::Env env);
  // Takes ownership of fd.
  static Napi::Object New(Napi::Env env, int fd);
  // The fd of a BpfProgram passed from JavaScript (borrowed).
  static int FdOf(const Napi::Value& v);

  explicit BpfProgram(const Napi::CallbackInfo& info);
  ~BpfProgram() override;

 private:
  static Napi::Value FromPin(const Napi::CallbackInfo& info);
  static Napi::Value FromId(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value MapIds(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value RunSyscall(const Napi::CallbackInfo& info);
  void Pin(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  int fd_ = -1;
  std::string name_;
  uint32_t type_ = 0, id_ = 0;
  std::string tag_;
};

}  // namespace bpfproxy
