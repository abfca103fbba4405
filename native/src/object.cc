#include "object.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addon.h"
#include "errors.h"
#include "libbpf_log.h"
#include "map.h"
#include "program.h"

namespace bpfproxy {

Napi::Function BpfObject::Init(Napi::Env env) {
  return DefineClass(env, "BpfObject",
                     {
                         InstanceAccessor<&BpfObject::Name>("name"),
                         InstanceAccessor<&BpfObject::Loaded>("loaded"),
                         InstanceMethod<&BpfObject::Maps>("maps"),
                         InstanceMethod<&BpfObject::Programs>("programs"),
                         InstanceMethod<&BpfObject::RodataVariables>("rodataVariables"),
                         InstanceMethod<&BpfObject::TypeLayout>("typeLayout"),
                         InstanceMethod<&BpfObject::Load>("load"),
                         InstanceMethod<&BpfObject::Map>("map"),
                         InstanceMethod<&BpfObject::Program>("program"),
                         InstanceMethod<&BpfObject::Close>("close"),
                     });
}

BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) throw Napi::TypeError::New(env, "BpfObject: the ELF image must be a Buffer");
  auto elf = info[0].As<Napi::Buffer<uint8_t>>();
  elf_.assign(elf.Data(), elf.Data() + elf.Length());
  name_ = RequireString(info[1], "name");
  Guard(env, [&] {
    LibbpfLogCapture log;
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name_.c_str());
    obj_ = bpf_object__open_mem(elf_.data(), elf_.size(), &opts);
    if (obj_ == nullptr) ThrowSys(errno, "bpf_object__open_mem", "opening BPF object '" + name_ + "' " + log.Tail(1024));
  });
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Object options = info[2].As<Napi::Object>();
    if (options.Has("rodata") && options.Get("rodata").IsObject()) ApplyRodata(env, options.Get("rodata").As<Napi::Object>());
    if (options.Has("maps") && options.Get("maps").IsObject()) ApplyMapOptions(env, options.Get("maps").As<Napi::Object>());
  }
}

BpfObject::~BpfObject() {
  if (obj_ != nullptr && !busy_) bpf_object__close(obj_);
}

struct bpf_object* BpfObject::obj() const {
  if (obj_ == nullptr) ThrowSys(EBADF, "bpf_object", "BPF object '" + name_ + "' is closed");
  if (busy_) ThrowSys(EBUSY, "bpf_object", "BPF object '" + name_ + "' is being loaded");
  return obj_;
}

Napi::Value BpfObject::Name(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }
Napi::Value BpfObject::Loaded(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), loaded_); }

static struct bpf_map* FindRodata(struct bpf_object* obj) {
  struct bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    const char* n = bpf_map__name(m);
    size_t len = strlen(n);
    if (bpf_map__is_internal(m) && len >= 7 && strcmp(n + len - 7, ".rodata") == 0) return m;
  }
  return nullptr;
}

// Calls f(name, offset, size) for each variable of the object's .rodata section, from BTF.
template <typename F>
static void ForEachRodataVar(struct bpf_object* obj, F&& f) {
  struct btf* btf = bpf_object__btf(obj);
  if (btf == nullptr) return;
  int id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
  if (id < 0) return;
  const struct btf_type* sec = btf__type_by_id(btf, id);
  const struct btf_var_secinfo* vs = btf_var_secinfos(sec);
  for (int i = 0; i < btf_vlen(sec); i++, vs++) {
    const struct btf_type* var = btf__type_by_id(btf, vs->type);
    f(btf__name_by_offset(btf, var->name_off), vs->offset, vs->size);
  }
}

// rodata: { variable: number | bigint | boolean | Buffer }, little-endian as the host.
void BpfObject::ApplyRodata(Napi::Env env, const Napi::Object& values) {
  struct bpf_map* rodata = FindRodata(obj_);
  Napi::Array names = values.GetPropertyNames();
  if (names.Length() == 0) return;
  if (rodata == nullptr) throw Napi::Error::New(env, "BPF object '" + name_ + "' has no .rodata configuration");
  size_t size = 0;
  uint8_t* mem = static_cast<uint8_t*>(bpf_map__initial_value(rodata, &size));
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string key = names.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value v = values.Get(key);
    bool found = false;
    ForEachRodataVar(obj_, [&](const char* var, uint32_t off, uint32_t vsize) {
      if (found || key != var) return;
      found = true;
      if (off + vsize > size) throw Napi::Error::New(env, "rodata variable '" + key + "' lies outside .rodata");
      uint8_t* at = mem + off;
      if (v.IsBuffer()) {
        auto b = v.As<Napi::Buffer<uint8_t>>();
        if (b.Length() != vsize) throw Napi::TypeError::New(env, "rodata '" + key + "' takes " + std::to_string(vsize) + " bytes");
        memcpy(at, b.Data(), vsize);
        return;
      }
      uint64_t n;
      if (v.IsBoolean()) n = v.As<Napi::Boolean>().Value();
      else if (v.IsBigInt()) { bool lossless; n = v.As<Napi::BigInt>().Uint64Value(&lossless); }
      else if (v.IsNumber()) {
        double d = v.As<Napi::Number>().DoubleValue();
        if (d < 0 || d != static_cast<double>(static_cast<uint64_t>(d))) throw Napi::TypeError::New(env, "rodata '" + key + "' takes a non-negative integer");
        n = static_cast<uint64_t>(d);
      } else throw Napi::TypeError::New(env, "rodata '" + key + "': unsupported value type");
      if (vsize > 8) throw Napi::TypeError::New(env, "rodata '" + key + "' is " + std::to_string(vsize) + " bytes: pass a Buffer");
      if (vsize < 8 && (n >> (8 * vsize)) != 0) throw Napi::RangeError::New(env, "rodata '" + key + "': " + std::to_string(n) + " does not fit in " + std::to_string(vsize) + " bytes");
      memcpy(at, &n, vsize);  // little-endian hosts: the low bytes come first
    });
    if (!found) throw Napi::Error::New(env, "BPF object '" + name_ + "' has no rodata variable '" + key + "'");
  }
}

// maps: { name: { maxEntries?, pinPath? } }
void BpfObject::ApplyMapOptions(Napi::Env env, const Napi::Object& maps) {
  Napi::Array names = maps.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string key = names.Get(i).As<Napi::String>().Utf8Value();
    struct bpf_map* m = bpf_object__find_map_by_name(obj_, key.c_str());
    if (m == nullptr) throw Napi::Error::New(env, "BPF object '" + name_ + "' has no map '" + key + "'");
    Napi::Object o = maps.Get(key).As<Napi::Object>();
    Guard(env, [&] {
      if (o.Has("maxEntries") && o.Get("maxEntries").IsNumber())
        CheckRet(bpf_map__set_max_entries(m, o.Get("maxEntries").As<Napi::Number>().Uint32Value()), "bpf_map__set_max_entries", "sizing map '" + key + "'");
      if (o.Has("pinPath") && o.Get("pinPath").IsString())
        CheckRet(bpf_map__set_pin_path(m, o.Get("pinPath").As<Napi::String>().Utf8Value().c_str()), "bpf_map__set_pin_path", "setting the pin path of map '" + key + "'");
    });
  }
}

void BpfObject::CheckPinnedMaps() {
  struct bpf_map* m;
  bpf_object__for_each_map(m, obj_) {
    const char* path = bpf_map__pin_path(m);
    if (path == nullptr) continue;
    struct stat st;
    if (stat(path, &st) != 0) continue;  // not pinned yet: load creates and pins it
    int fd = bpf_obj_get(path);
    if (fd < 0) ThrowSys(errno, "bpf_obj_get", std::string("opening pinned map ") + path);
    MapInfo have;
    try {
      have = MapInfoOf(fd);
    } catch (...) {
      close(fd);
      ThrowSys(EINVAL, "bpf_map_get_info_by_fd", std::string(path) + " is pinned but is not a BPF map");
    }
    close(fd);
    struct Field { const char* what; uint64_t want, got; } fields[] = {
        {"type", bpf_map__type(m), have.type},
        {"key size", bpf_map__key_size(m), have.keySize},
        {"value size", bpf_map__value_size(m), have.valueSize},
        {"max entries", bpf_map__max_entries(m), have.maxEntries},
        {"flags", bpf_map__map_flags(m), have.flags},
    };
    for (const Field& f : fields) {
      if (f.want == f.got) continue;
      ThrowSys(EEXIST, "bpf_object__load",
               std::string("pinned map ") + path + " is incompatible: its " + f.what + " is " + std::to_string(f.got) +
                   ", this program's map '" + bpf_map__name(m) + "' has " + std::to_string(f.want) +
                   " (a layout change needs a new versioned map name; a size change, a migration or removing the pin)");
    }
  }
}

void BpfObject::DoLoad() {
  CheckPinnedMaps();
  LibbpfLogCapture log;
  int ret = bpf_object__load(obj_);
  if (ret < 0) {
    int err = errno ? errno : -ret;
    std::string tail = log.Tail();
    ThrowSys(err, "bpf_object__load", "loading BPF object '" + name_ + "'" + (tail.empty() ? "" : "\n" + tail));
  }
  loaded_ = true;
}

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, BpfObject* object)
      : Napi::AsyncWorker(env, "bpfproxy:load"), object_(object), deferred_(Napi::Promise::Deferred::New(env)) {
    object_->Ref();  // keep the object alive while the worker uses it
  }
  ~LoadWorker() override { object_->Unref(); }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      object_->DoLoad();
    } catch (const SysError& e) {
      error_ = e;
      failed_ = true;
    }
  }
  void OnOK() override {
    object_->busy_ = false;
    if (failed_) deferred_.Reject(ToJsError(Env(), error_).Value());
    else deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error& e) override {
    object_->busy_ = false;
    deferred_.Reject(e.Value());
  }

 private:
  BpfObject* object_;
  Napi::Promise::Deferred deferred_;
  SysError error_;
  bool failed_ = false;
};

Napi::Value BpfObject::Load(const Napi::CallbackInfo& info) {
  Guard(info.Env(), [&] { obj(); });
  if (loaded_) throw Napi::Error::New(info.Env(), "BPF object '" + name_ + "' is already loaded");
  busy_ = true;
  auto* worker = new LoadWorker(info.Env(), this);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// maps() → [{ name, type, keySize, valueSize, maxEntries, flags, internal, pinPath }]
Napi::Value BpfObject::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    Napi::Array out = Napi::Array::New(env);
    struct bpf_map* m;
    uint32_t i = 0;
    bpf_object__for_each_map(m, obj()) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_map__name(m));
      o.Set("type", MapTypeName(bpf_map__type(m)));
      o.Set("keySize", bpf_map__key_size(m));
      o.Set("valueSize", bpf_map__value_size(m));
      o.Set("maxEntries", bpf_map__max_entries(m));
      o.Set("flags", bpf_map__map_flags(m));
      o.Set("internal", bpf_map__is_internal(m));
      const char* pin = bpf_map__pin_path(m);
      o.Set("pinPath", pin ? Napi::Value(Napi::String::New(env, pin)) : env.Null());
      out.Set(i++, o);
    }
    return Napi::Value(out);
  });
}

// programs() → [{ name, section, type }]
Napi::Value BpfObject::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    Napi::Array out = Napi::Array::New(env);
    struct bpf_program* p;
    uint32_t i = 0;
    bpf_object__for_each_program(p, obj()) {
      Napi::Object o = Napi::Object::New(env);
      const char* type = libbpf_bpf_prog_type_str(bpf_program__type(p));
      o.Set("name", bpf_program__name(p));
      o.Set("section", bpf_program__section_name(p));
      o.Set("type", type ? type : "unknown");
      out.Set(i++, o);
    }
    return Napi::Value(out);
  });
}

Napi::Value BpfObject::RodataVariables(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    Napi::Array out = Napi::Array::New(env);
    uint32_t i = 0;
    ForEachRodataVar(obj(), [&](const char* name, uint32_t off, uint32_t size) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", name);
      o.Set("offset", off);
      o.Set("size", size);
      out.Set(i++, o);
    });
    return Napi::Value(out);
  });
}

// typeLayout('struct_name') → { name, size, members: [{ name, offset, size, bitOffset, bitSize }] }
// from the object's BTF: the layout the compiler really produced, for the codec drift test.
Napi::Value BpfObject::TypeLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = RequireString(info[0], "type name");
  return Guard(env, [&]() -> Napi::Value {
    struct btf* btf = bpf_object__btf(obj());
    if (btf == nullptr) ThrowSys(ENOENT, "bpf_object__btf", "BPF object '" + name_ + "' has no BTF");
    int id = btf__find_by_name_kind(btf, name.c_str(), BTF_KIND_STRUCT);
    if (id < 0) id = btf__find_by_name_kind(btf, name.c_str(), BTF_KIND_UNION);
    if (id < 0) return env.Null();
    const struct btf_type* t = btf__type_by_id(btf, id);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", name);
    o.Set("size", t->size);
    Napi::Array members = Napi::Array::New(env);
    const struct btf_member* m = btf_members(t);
    for (int i = 0; i < btf_vlen(t); i++, m++) {
      Napi::Object mo = Napi::Object::New(env);
      uint32_t bitOff = btf_member_bit_offset(t, i), bitSize = btf_member_bitfield_size(t, i);
      mo.Set("name", btf__name_by_offset(btf, m->name_off));
      mo.Set("offset", bitOff / 8);
      mo.Set("size", static_cast<double>(btf__resolve_size(btf, m->type)));
      mo.Set("bitOffset", bitOff);
      mo.Set("bitSize", bitSize);
      members.Set(i, mo);
    }
    o.Set("members", members);
    return o;
  });
}

// map(name) → BpfMap with its own fd, valid after close() of the object.
Napi::Value BpfObject::Map(const Napi::CallbackInfo& info) {
  std::string name = RequireString(info[0], "map name");
  return Guard(info.Env(), [&] {
    if (!loaded_) ThrowSys(EINVAL, "bpf_object__find_map_by_name", "BPF object '" + name_ + "' is not loaded yet");
    struct bpf_map* m = bpf_object__find_map_by_name(obj(), name.c_str());
    if (m == nullptr) ThrowSys(ENOENT, "bpf_object__find_map_by_name", "BPF object '" + name_ + "' has no map '" + name + "'");
    int fd = CheckRet(fcntl(bpf_map__fd(m), F_DUPFD_CLOEXEC, 0), "fcntl(F_DUPFD_CLOEXEC)", "duplicating the fd of map '" + name + "'");
    return Napi::Value(BpfMap::New(info.Env(), fd));
  });
}

Napi::Value BpfObject::Program(const Napi::CallbackInfo& info) {
  std::string name = RequireString(info[0], "program name");
  return Guard(info.Env(), [&] {
    if (!loaded_) ThrowSys(EINVAL, "bpf_object__find_program_by_name", "BPF object '" + name_ + "' is not loaded yet");
    struct bpf_program* p = bpf_object__find_program_by_name(obj(), name.c_str());
    if (p == nullptr) ThrowSys(ENOENT, "bpf_object__find_program_by_name", "BPF object '" + name_ + "' has no program '" + name + "'");
    int fd = CheckRet(fcntl(bpf_program__fd(p), F_DUPFD_CLOEXEC, 0), "fcntl(F_DUPFD_CLOEXEC)", "duplicating the fd of program '" + name + "'");
    return Napi::Value(BpfProgram::New(info.Env(), fd));
  });
}

// close(): releases the object's own fds; maps and programs handed out stay valid.
void BpfObject::Close(const Napi::CallbackInfo& info) {
  if (busy_) throw Napi::Error::New(info.Env(), "BPF object '" + name_ + "' is being loaded");
  if (obj_ != nullptr) bpf_object__close(obj_);
  obj_ = nullptr;
}

}  // namespace bpfproxy
