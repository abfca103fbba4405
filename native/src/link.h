// BpfLink: one BPF link (XDP or tcx attachment), owned. Links pinned in bpffs keep their program
// attached after the agent exits; update() swaps the program atomically.
// Legacy tc (clsact + cls_bpf filters) has no link: the module functions tcAttach/tcDetach/tcQuery
// manage those filters, for kernels without tcx.
#pragma once

#include <napi.h>

#include <string>

namespace bpfproxy {

class BpfLink : public Napi::ObjectWrap<BpfLink> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object New(Napi::Env env, int fd);

  explicit BpfLink(const Napi::CallbackInfo& info);
  ~BpfLink() override;

 private:
  static Napi::Value AttachXdp(const Napi::CallbackInfo& info);
  static Napi::Value AttachTcx(const Napi::CallbackInfo& info);
  static Napi::Value FromPin(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  void Update(const Napi::CallbackInfo& info);
  void Pin(const Napi::CallbackInfo& info);
  void Detach(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  int fd_ = -1;
};

// Legacy tc: tcAttach(program, ifindex, 'ingress'|'egress', priority, handle) replaces atomically
// a filter with the same priority and handle; tcDetach(ifindex, direction, priority, handle);
// tcQuery(ifindex, direction, priority, handle) → program id or 0.
Napi::Value TcAttach(const Napi::CallbackInfo& info);
void TcDetach(const Napi::CallbackInfo& info);
Napi::Value TcQuery(const Napi::CallbackInfo& info);
// xdpQuery(ifindex) → { progId, mode } of what XDP runs on an interface (0 for none).
Napi::Value XdpQuery(const Napi::CallbackInfo& info);

}  // namespace bpfproxy
