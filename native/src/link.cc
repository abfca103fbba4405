#include "link.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include "addon.h"
#include "errors.h"
#include "program.h"

namespace bpfproxy {

static std::string IfName(uint32_t ifindex) {
  char name[IF_NAMESIZE] = {};
  if (if_indextoname(ifindex, name) == nullptr) return "ifindex " + std::to_string(ifindex);
  return std::string(name) + " (ifindex " + std::to_string(ifindex) + ")";
}

// Attach calls take an ifindex of the calling thread's namespace; say so when it is not there
// (the kernel answers EINVAL for some hooks, which hides the real mistake).
static void RequireIfindex(uint32_t ifindex) {
  char name[IF_NAMESIZE];
  if (if_indextoname(ifindex, name) == nullptr)
    ThrowSys(ENODEV, "if_indextoname", "no interface with ifindex " + std::to_string(ifindex) + " in this network namespace");
}

Napi::Function BpfLink::Init(Napi::Env env) {
  return DefineClass(env, "BpfLink",
                     {
                         StaticMethod<&BpfLink::AttachXdp>("attachXdp"),
                         StaticMethod<&BpfLink::AttachTcx>("attachTcx"),
                         StaticMethod<&BpfLink::FromPin>("fromPin"),
                         InstanceAccessor<&BpfLink::Info>("info"),
                         InstanceMethod<&BpfLink::Update>("update"),
                         InstanceMethod<&BpfLink::Pin>("pin"),
                         InstanceMethod<&BpfLink::Detach>("detach"),
                         InstanceMethod<&BpfLink::Close>("close"),
                     });
}

Napi::Object BpfLink::New(Napi::Env env, int fd) {
  return env.GetInstanceData<AddonData>()->linkClass.New({Napi::Number::New(env, fd)});
}

BpfLink::BpfLink(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfLink>(info) {
  if (info.Length() != 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(info.Env(), "BpfLink is made by BpfLink.attachXdp(), attachTcx() or fromPin()");
  fd_ = info[0].As<Napi::Number>().Int32Value();
}

BpfLink::~BpfLink() {
  if (fd_ >= 0) close(fd_);
}

// attachXdp(program, ifindex, mode: 'native'|'generic'|'auto')
Napi::Value BpfLink::AttachXdp(const Napi::CallbackInfo& info) {
  int prog = BpfProgram::FdOf(info[0]);
  uint32_t ifindex = info[1].As<Napi::Number>().Uint32Value();
  std::string mode = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "auto";
  uint32_t flags = mode == "native" ? XDP_FLAGS_DRV_MODE : mode == "generic" ? XDP_FLAGS_SKB_MODE : 0;
  return Guard(info.Env(), [&] {
    RequireIfindex(ifindex);
    LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
    int fd = bpf_link_create(prog, ifindex, BPF_XDP, &opts);
    CheckRet(fd, "bpf_link_create", "attaching XDP (" + mode + ") to " + IfName(ifindex));
    return Napi::Value(New(info.Env(), fd));
  });
}

// attachTcx(program, ifindex, 'ingress'|'egress'): appended after the links already there.
Napi::Value BpfLink::AttachTcx(const Napi::CallbackInfo& info) {
  int prog = BpfProgram::FdOf(info[0]);
  uint32_t ifindex = info[1].As<Napi::Number>().Uint32Value();
  std::string dir = RequireString(info[2], "direction");
  if (dir != "ingress" && dir != "egress") throw Napi::TypeError::New(info.Env(), "direction must be 'ingress' or 'egress'");
  return Guard(info.Env(), [&] {
    RequireIfindex(ifindex);
    LIBBPF_OPTS(bpf_link_create_opts, opts);
    int fd = bpf_link_create(prog, ifindex, dir == "ingress" ? BPF_TCX_INGRESS : BPF_TCX_EGRESS, &opts);
    CheckRet(fd, "bpf_link_create", "attaching tcx " + dir + " to " + IfName(ifindex));
    return Napi::Value(New(info.Env(), fd));
  });
}

Napi::Value BpfLink::FromPin(const Napi::CallbackInfo& info) {
  std::string path = RequireString(info[0], "path");
  return Guard(info.Env(), [&] {
    int fd = CheckRet(bpf_obj_get(path.c_str()), "bpf_obj_get", "opening pinned link " + path);
    struct bpf_link_info raw = {};
    uint32_t len = sizeof(raw);
    if (bpf_link_get_info_by_fd(fd, &raw, &len) < 0) {
      close(fd);
      ThrowSys(EINVAL, "bpf_link_get_info_by_fd", path + " is pinned but is not a BPF link");
    }
    return Napi::Value(New(info.Env(), fd));
  });
}

// info → { id, type, progId, ifindex, attachType } (ifindex 0 once the device is gone).
Napi::Value BpfLink::Info(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    struct bpf_link_info raw = {};
    uint32_t len = sizeof(raw);
    CheckRet(bpf_link_get_info_by_fd(fd_, &raw, &len), "bpf_link_get_info_by_fd", "reading link info");
    Napi::Object o = Napi::Object::New(info.Env());
    const char* type = libbpf_bpf_link_type_str(static_cast<enum bpf_link_type>(raw.type));
    o.Set("id", raw.id);
    o.Set("type", type ? type : "unknown");
    o.Set("progId", raw.prog_id);
    if (raw.type == BPF_LINK_TYPE_XDP) {
      o.Set("ifindex", raw.xdp.ifindex);
      o.Set("attachType", "xdp");
    } else if (raw.type == BPF_LINK_TYPE_TCX) {
      o.Set("ifindex", raw.tcx.ifindex);
      o.Set("attachType", raw.tcx.attach_type == BPF_TCX_INGRESS ? "ingress" : "egress");
    }
    return Napi::Value(o);
  });
}

// update(program): the kernel swaps the program in one step; packets see the old or the new one.
void BpfLink::Update(const Napi::CallbackInfo& info) {
  int prog = BpfProgram::FdOf(info[0]);
  Guard(info.Env(), [&] { CheckRet(bpf_link_update(fd_, prog, nullptr), "bpf_link_update", "replacing the program of a link"); });
}

void BpfLink::Pin(const Napi::CallbackInfo& info) {
  std::string path = RequireString(info[0], "path");
  Guard(info.Env(), [&] { CheckRet(bpf_obj_pin(fd_, path.c_str()), "bpf_obj_pin", "pinning link at " + path); });
}

// detach(): the program leaves the hook now, even if the link is pinned elsewhere.
void BpfLink::Detach(const Napi::CallbackInfo& info) {
  Guard(info.Env(), [&] { CheckRet(bpf_link_detach(fd_), "bpf_link_detach", "detaching link"); });
}

void BpfLink::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

static bpf_tc_attach_point Direction(const Napi::Value& v) {
  std::string dir = RequireString(v, "direction");
  if (dir == "ingress") return BPF_TC_INGRESS;
  if (dir == "egress") return BPF_TC_EGRESS;
  throw Napi::TypeError::New(v.Env(), "direction must be 'ingress' or 'egress'");
}

Napi::Value TcAttach(const Napi::CallbackInfo& info) {
  int prog = BpfProgram::FdOf(info[0]);
  uint32_t ifindex = info[1].As<Napi::Number>().Uint32Value();
  bpf_tc_attach_point dir = Direction(info[2]);
  uint32_t priority = info[3].As<Napi::Number>().Uint32Value();
  uint32_t handle = info[4].As<Napi::Number>().Uint32Value();
  return Guard(info.Env(), [&] {
    RequireIfindex(ifindex);
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = BPF_TC_INGRESS);
    int ret = bpf_tc_hook_create(&hook);  // the clsact qdisc serves both directions
    if (ret < 0 && ret != -EEXIST) CheckRet(ret, "bpf_tc_hook_create", "creating clsact on " + IfName(ifindex));
    hook.attach_point = dir;
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog, .flags = BPF_TC_F_REPLACE, .handle = handle, .priority = priority);
    CheckRet(bpf_tc_attach(&hook, &opts), "bpf_tc_attach", "attaching tc filter to " + IfName(ifindex));
    return Napi::Number::New(info.Env(), opts.prog_id);
  });
}

void TcDetach(const Napi::CallbackInfo& info) {
  uint32_t ifindex = info[0].As<Napi::Number>().Uint32Value();
  bpf_tc_attach_point dir = Direction(info[1]);
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = dir);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = info[3].As<Napi::Number>().Uint32Value(),
              .priority = info[2].As<Napi::Number>().Uint32Value());
  Guard(info.Env(), [&] { CheckRet(bpf_tc_detach(&hook, &opts), "bpf_tc_detach", "detaching tc filter from " + IfName(ifindex)); });
}

Napi::Value TcQuery(const Napi::CallbackInfo& info) {
  uint32_t ifindex = info[0].As<Napi::Number>().Uint32Value();
  bpf_tc_attach_point dir = Direction(info[1]);
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = dir);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = info[3].As<Napi::Number>().Uint32Value(),
              .priority = info[2].As<Napi::Number>().Uint32Value());
  return Guard(info.Env(), [&] {
    int ret = bpf_tc_query(&hook, &opts);
    if (ret == -ENOENT || ret == -EINVAL) return Napi::Number::New(info.Env(), 0);
    CheckRet(ret, "bpf_tc_query", "querying tc filters of " + IfName(ifindex));
    return Napi::Number::New(info.Env(), opts.prog_id);
  });
}

Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  uint32_t ifindex = info[0].As<Napi::Number>().Uint32Value();
  return Guard(info.Env(), [&] {
    LIBBPF_OPTS(bpf_xdp_query_opts, opts);
    CheckRet(bpf_xdp_query(ifindex, 0, &opts), "bpf_xdp_query", "querying XDP on " + IfName(ifindex));
    Napi::Object o = Napi::Object::New(info.Env());
    const char* mode = opts.attach_mode == XDP_ATTACHED_DRV ? "native"
                       : opts.attach_mode == XDP_ATTACHED_SKB ? "generic"
                       : opts.attach_mode == XDP_ATTACHED_HW ? "offload"
                       : opts.attach_mode == XDP_ATTACHED_MULTI ? "multi" : "none";
    o.Set("progId", opts.attach_mode == XDP_ATTACHED_SKB ? opts.skb_prog_id : opts.attach_mode == XDP_ATTACHED_DRV ? opts.drv_prog_id : opts.prog_id);
    o.Set("mode", mode);
    return Napi::Value(o);
  });
}

}  // namespace bpfproxy
