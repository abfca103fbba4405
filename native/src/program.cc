#include "program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "addon.h"
#include "errors.h"

namespace bpfproxy {

Napi::Function BpfProgram::Init(Napi::Env env) {
  return DefineClass(env, "BpfProgram",
                     {
                         StaticMethod<&BpfProgram::FromPin>("fromPin"),
                         StaticMethod<&BpfProgram::FromId>("fromId"),
                         InstanceAccessor<&BpfProgram::Info>("info"),
                         InstanceAccessor<&BpfProgram::Fd>("fd"),
                         InstanceMethod<&BpfProgram::MapIds>("mapIds"),
                         InstanceMethod<&BpfProgram::TestRun>("testRun"),
                         InstanceMethod<&BpfProgram::RunSyscall>("runSyscall"),
                         InstanceMethod<&BpfProgram::Pin>("pin"),
                         InstanceMethod<&BpfProgram::Close>("close"),
                     });
}

Napi::Object BpfProgram::New(Napi::Env env, int fd) {
  return env.GetInstanceData<AddonData>()->programClass.New({Napi::Number::New(env, fd)});
}

int BpfProgram::FdOf(const Napi::Value& v) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "expected a BpfProgram");
  Napi::Object o = v.As<Napi::Object>();
  if (!o.InstanceOf(v.Env().GetInstanceData<AddonData>()->programClass.Value()))
    throw Napi::TypeError::New(v.Env(), "expected a BpfProgram");
  BpfProgram* p = Unwrap(o);
  if (p->fd_ < 0) throw Napi::Error::New(v.Env(), "program '" + p->name_ + "' is closed");
  return p->fd_;
}

BpfProgram::BpfProgram(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfProgram>(info) {
  if (info.Length() != 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(info.Env(), "BpfProgram is made by BpfObject.program() or BpfProgram.fromPin()");
  fd_ = info[0].As<Napi::Number>().Int32Value();
  struct bpf_prog_info raw = {};
  uint32_t len = sizeof(raw);
  Guard(info.Env(), [&] { CheckRet(bpf_prog_get_info_by_fd(fd_, &raw, &len), "bpf_prog_get_info_by_fd", "reading program info"); });
  name_ = raw.name;
  type_ = raw.type;
  id_ = raw.id;
  char tag[2 * BPF_TAG_SIZE + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++) snprintf(tag + 2 * i, 3, "%02x", raw.tag[i]);
  tag_ = tag;
}

BpfProgram::~BpfProgram() {
  if (fd_ >= 0) close(fd_);
}

Napi::Value BpfProgram::FromPin(const Napi::CallbackInfo& info) {
  std::string path = RequireString(info[0], "path");
  return Guard(info.Env(), [&] {
    int fd = CheckRet(bpf_obj_get(path.c_str()), "bpf_obj_get", "opening pinned program " + path);
    struct bpf_prog_info raw = {};
    uint32_t len = sizeof(raw);
    if (bpf_prog_get_info_by_fd(fd, &raw, &len) < 0) {
      close(fd);
      ThrowSys(EINVAL, "bpf_prog_get_info_by_fd", path + " is pinned but is not a BPF program");
    }
    return Napi::Value(New(info.Env(), fd));
  });
}

Napi::Value BpfProgram::FromId(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  return Guard(info.Env(), [&] {
    int fd = CheckRet(bpf_prog_get_fd_by_id(id), "bpf_prog_get_fd_by_id", "opening program id " + std::to_string(id));
    return Napi::Value(New(info.Env(), fd));
  });
}

Napi::Value BpfProgram::Info(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  const char* type = libbpf_bpf_prog_type_str(static_cast<enum bpf_prog_type>(type_));
  o.Set("name", name_);
  o.Set("type", type ? type : "unknown");
  o.Set("id", id_);
  o.Set("tag", tag_);
  return o;
}

Napi::Value BpfProgram::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

// mapIds() → the ids of the maps the program uses (fixed at load): which maps a running program
// reads is what tells a live map from a stale pin of the same family.
Napi::Value BpfProgram::MapIds(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    if (fd_ < 0) throw Napi::Error::New(info.Env(), "program '" + name_ + "' is closed");
    struct bpf_prog_info raw = {};
    uint32_t len = sizeof(raw);
    CheckRet(bpf_prog_get_info_by_fd(fd_, &raw, &len), "bpf_prog_get_info_by_fd", "counting the maps of program '" + name_ + "'");
    std::vector<uint32_t> ids(raw.nr_map_ids);
    if (!ids.empty()) {
      uint32_t n = raw.nr_map_ids;
      raw = {};
      raw.nr_map_ids = n;
      raw.map_ids = reinterpret_cast<uint64_t>(ids.data());
      len = sizeof(raw);
      CheckRet(bpf_prog_get_info_by_fd(fd_, &raw, &len), "bpf_prog_get_info_by_fd", "reading the map ids of program '" + name_ + "'");
      ids.resize(std::min(n, raw.nr_map_ids));
    }
    Napi::Array out = Napi::Array::New(info.Env(), ids.size());
    for (size_t i = 0; i < ids.size(); i++) out.Set(i, Napi::Number::New(info.Env(), ids[i]));
    return Napi::Value(out);
  });
}

// testRun({ data, repeat?, ctx?, dataSizeOut? }) → { retval, duration, data, ctx? }
// duration is the kernel's average in nanoseconds per run over `repeat` runs.
Napi::Value BpfProgram::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object opts = info[0].As<Napi::Object>();
  if (!opts.Get("data").IsBuffer()) throw Napi::TypeError::New(env, "testRun: data must be a Buffer");
  auto data = opts.Get("data").As<Napi::Buffer<uint8_t>>();
  uint32_t repeat = opts.Has("repeat") ? opts.Get("repeat").As<Napi::Number>().Uint32Value() : 1;
  // Room for programs that grow the packet (encapsulation, ICMP errors).
  uint32_t outSize = opts.Has("dataSizeOut") ? opts.Get("dataSizeOut").As<Napi::Number>().Uint32Value()
                                             : static_cast<uint32_t>(data.Length()) + 256;
  std::vector<uint8_t> out(outSize);
  std::vector<uint8_t> ctxIn, ctxOut;
  LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = data.Data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(data.Length()), .data_size_out = outSize, .repeat = static_cast<int>(repeat));
  if (opts.Has("ctx") && opts.Get("ctx").IsBuffer()) {
    auto ctx = opts.Get("ctx").As<Napi::Buffer<uint8_t>>();
    ctxIn.assign(ctx.Data(), ctx.Data() + ctx.Length());
    ctxOut.resize(ctxIn.size());
    run.ctx_in = ctxIn.data();
    run.ctx_size_in = ctxIn.size();
    run.ctx_out = ctxOut.data();
    run.ctx_size_out = ctxOut.size();
  }
  return Guard(env, [&] {
    if (fd_ < 0) ThrowSys(EBADF, "bpf_prog_test_run_opts", "program '" + name_ + "' is closed");
    CheckRet(bpf_prog_test_run_opts(fd_, &run), "bpf_prog_test_run_opts", "test-running program '" + name_ + "'");
    Napi::Object r = Napi::Object::New(env);
    r.Set("retval", run.retval);
    r.Set("duration", run.duration);
    r.Set("data", CopyBuffer(env, out.data(), run.data_size_out));
    if (!ctxOut.empty()) r.Set("ctx", CopyBuffer(env, ctxOut.data(), run.ctx_size_out));
    return Napi::Value(r);
  });
}

// runSyscall(ctx) → { retval, ctx }: runs a BPF_PROG_TYPE_SYSCALL program once. Such a run takes
// no packet, no repeat and no ctx_out: the kernel writes the program's changes to ctx back into
// ctx_in, so the buffer passed in comes back as the program left it.
Napi::Value BpfProgram::RunSyscall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) throw Napi::TypeError::New(env, "runSyscall: ctx must be a Buffer");
  auto ctx = info[0].As<Napi::Buffer<uint8_t>>();
  std::vector<uint8_t> buf(ctx.Data(), ctx.Data() + ctx.Length());
  LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = buf.data(), .ctx_size_in = static_cast<uint32_t>(buf.size()));
  return Guard(env, [&] {
    if (fd_ < 0) ThrowSys(EBADF, "bpf_prog_test_run_opts", "program '" + name_ + "' is closed");
    CheckRet(bpf_prog_test_run_opts(fd_, &run), "bpf_prog_test_run_opts", "running syscall program '" + name_ + "'");
    Napi::Object r = Napi::Object::New(env);
    r.Set("retval", run.retval);
    r.Set("ctx", CopyBuffer(env, buf.data(), buf.size()));
    return Napi::Value(r);
  });
}

void BpfProgram::Pin(const Napi::CallbackInfo& info) {
  std::string path = RequireString(info[0], "path");
  Guard(info.Env(), [&] { CheckRet(bpf_obj_pin(fd_, path.c_str()), "bpf_obj_pin", "pinning program '" + name_ + "' at " + path); });
}

void BpfProgram::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace bpfproxy
