#include "map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "addon.h"
#include "errors.h"

namespace bpfproxy {

const char* MapTypeName(uint32_t type) {
  const char* name = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(type));
  return name ? name : "unknown";
}

MapInfo MapInfoOf(int fd) {
  struct bpf_map_info raw = {};
  uint32_t len = sizeof(raw);
  CheckRet(bpf_map_get_info_by_fd(fd, &raw, &len), "bpf_map_get_info_by_fd", "reading map info");
  MapInfo info;
  info.name = raw.name;
  info.type = raw.type;
  info.id = raw.id;
  info.keySize = raw.key_size;
  info.valueSize = raw.value_size;
  info.maxEntries = raw.max_entries;
  info.flags = raw.map_flags;
  info.btfId = raw.btf_id;
  info.btfKeyTypeId = raw.btf_key_type_id;
  info.btfValueTypeId = raw.btf_value_type_id;
  return info;
}

Napi::Object MapInfoToJs(Napi::Env env, const MapInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", info.name);
  o.Set("type", MapTypeName(info.type));
  o.Set("id", info.id);
  o.Set("keySize", info.keySize);
  o.Set("valueSize", info.valueSize);
  o.Set("maxEntries", info.maxEntries);
  o.Set("flags", info.flags);
  return o;
}

static bool IsPerCpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

Napi::Function BpfMap::Init(Napi::Env env) {
  return DefineClass(env, "BpfMap",
                     {
                         StaticMethod<&BpfMap::FromPin>("fromPin"),
                         StaticMethod<&BpfMap::FromId>("fromId"),
                         StaticMethod<&BpfMap::Create>("create"),
                         InstanceAccessor<&BpfMap::Info>("info"),
                         InstanceAccessor<&BpfMap::Fd>("fd"),
                         InstanceMethod<&BpfMap::Lookup>("lookup"),
                         InstanceMethod<&BpfMap::Update>("update"),
                         InstanceMethod<&BpfMap::Delete>("delete"),
                         InstanceMethod<&BpfMap::UpdateBatch>("updateBatch"),
                         InstanceMethod<&BpfMap::DeleteBatch>("deleteBatch"),
                         InstanceMethod<&BpfMap::Keys>("keys"),
                         InstanceMethod<&BpfMap::Dump>("dump"),
                         InstanceMethod<&BpfMap::Pin>("pin"),
                         InstanceMethod<&BpfMap::Close>("close"),
                     });
}

Napi::Object BpfMap::New(Napi::Env env, int fd) {
  AddonData* data = env.GetInstanceData<AddonData>();
  return data->mapClass.New({Napi::Number::New(env, fd)});
}

// Constructed only by the addon, with an fd it hands over.
BpfMap::BpfMap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfMap>(info) {
  if (info.Length() != 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(info.Env(), "BpfMap is made by BpfObject.map(), BpfMap.fromPin() or BpfMap.fromId()");
  fd_ = info[0].As<Napi::Number>().Int32Value();
  Guard(info.Env(), [&] { info_ = MapInfoOf(fd_); });
}

BpfMap::~BpfMap() {
  if (fd_ >= 0) close(fd_);
}

int BpfMap::fd() const {
  if (fd_ < 0) throw SysError{EBADF, "bpf_map", "map '" + info_.name + "' is closed"};
  return fd_;
}

size_t BpfMap::UserValueSize() const {
  if (!IsPerCpu(info_.type)) return info_.valueSize;
  return ((info_.valueSize + 7) & ~7u) * static_cast<size_t>(libbpf_num_possible_cpus());
}

void BpfMap::CheckKey(const Napi::Value& v) const {
  if (!v.IsBuffer() || v.As<Napi::Buffer<uint8_t>>().Length() != info_.keySize)
    throw Napi::TypeError::New(v.Env(), "map '" + info_.name + "': key must be a Buffer of " +
                                            std::to_string(info_.keySize) + " bytes");
}

Napi::Value BpfMap::FromPin(const Napi::CallbackInfo& info) {
  std::string path = RequireString(info[0], "path");
  return Guard(info.Env(), [&] {
    int fd = bpf_obj_get(path.c_str());
    CheckRet(fd, "bpf_obj_get", "opening pinned map " + path);
    struct bpf_map_info raw = {};
    uint32_t len = sizeof(raw);
    if (bpf_map_get_info_by_fd(fd, &raw, &len) < 0) {
      close(fd);
      ThrowSys(EINVAL, "bpf_map_get_info_by_fd", path + " is pinned but is not a BPF map");
    }
    return Napi::Value(New(info.Env(), fd));
  });
}

Napi::Value BpfMap::FromId(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  return Guard(info.Env(), [&] {
    int fd = CheckRet(bpf_map_get_fd_by_id(id), "bpf_map_get_fd_by_id", "opening map id " + std::to_string(id));
    return Napi::Value(New(info.Env(), fd));
  });
}

static uint32_t MapTypeByName(Napi::Env env, const std::string& name) {
  for (uint32_t t = 1; t < 64; t++) {
    const char* n = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(t));
    if (n != nullptr && name == n) return t;
  }
  throw Napi::TypeError::New(env, "unknown map type '" + name + "'");
}

// create({ type, name?, keySize, valueSize, maxEntries, flags?, innerMap? }): a map that belongs to no
// object, such as the inner arrays of a map-in-map (innerMap: a BpfMap serving as the template).
Napi::Value BpfMap::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  uint32_t type = MapTypeByName(env, RequireString(o.Get("type"), "type"));
  std::string name = o.Has("name") && o.Get("name").IsString() ? o.Get("name").As<Napi::String>().Utf8Value() : "";
  uint32_t keySize = o.Get("keySize").As<Napi::Number>().Uint32Value();
  uint32_t valueSize = o.Get("valueSize").As<Napi::Number>().Uint32Value();
  uint32_t maxEntries = o.Get("maxEntries").As<Napi::Number>().Uint32Value();
  LIBBPF_OPTS(bpf_map_create_opts, opts);
  if (o.Has("flags") && o.Get("flags").IsNumber()) opts.map_flags = o.Get("flags").As<Napi::Number>().Uint32Value();
  if (o.Has("innerMap") && o.Get("innerMap").IsObject()) {
    Napi::Object inner = o.Get("innerMap").As<Napi::Object>();
    if (!inner.InstanceOf(env.GetInstanceData<AddonData>()->mapClass.Value())) throw Napi::TypeError::New(env, "innerMap must be a BpfMap");
    opts.inner_map_fd = Unwrap(inner)->fd_;
  }
  return Guard(env, [&] {
    int fd = bpf_map_create(static_cast<enum bpf_map_type>(type), name.empty() ? nullptr : name.c_str(), keySize, valueSize, maxEntries, &opts);
    CheckRet(fd, "bpf_map_create", "creating map '" + name + "'");
    return Napi::Value(New(env, fd));
  });
}

Napi::Value BpfMap::Info(const Napi::CallbackInfo& info) { return MapInfoToJs(info.Env(), info_); }
Napi::Value BpfMap::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value BpfMap::Lookup(const Napi::CallbackInfo& info) {
  CheckKey(info[0]);
  auto key = info[0].As<Napi::Buffer<uint8_t>>();
  return Guard(info.Env(), [&]() -> Napi::Value {
    std::vector<uint8_t> value(UserValueSize());
    if (bpf_map_lookup_elem(fd(), key.Data(), value.data()) < 0) {
      if (errno == ENOENT) return info.Env().Null();
      ThrowSys(errno, "bpf_map_lookup_elem", "looking up a key in map '" + info_.name + "'");
    }
    return CopyBuffer(info.Env(), value.data(), value.size());
  });
}

void BpfMap::Update(const Napi::CallbackInfo& info) {
  CheckKey(info[0]);
  if (!info[1].IsBuffer() || info[1].As<Napi::Buffer<uint8_t>>().Length() != UserValueSize())
    throw Napi::TypeError::New(info.Env(), "map '" + info_.name + "': value must be a Buffer of " +
                                               std::to_string(UserValueSize()) + " bytes");
  uint64_t flags = info.Length() > 2 && info[2].IsNumber() ? static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value()) : uint64_t(BPF_ANY);
  Guard(info.Env(), [&] {
    CheckRet(bpf_map_update_elem(fd(), info[0].As<Napi::Buffer<uint8_t>>().Data(),
                                 info[1].As<Napi::Buffer<uint8_t>>().Data(), flags),
             "bpf_map_update_elem", "writing map '" + info_.name + "'");
  });
}

Napi::Value BpfMap::Delete(const Napi::CallbackInfo& info) {
  CheckKey(info[0]);
  return Guard(info.Env(), [&] {
    if (bpf_map_delete_elem(fd(), info[0].As<Napi::Buffer<uint8_t>>().Data()) < 0) {
      if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
      ThrowSys(errno, "bpf_map_delete_elem", "deleting from map '" + info_.name + "'");
    }
    return Napi::Boolean::New(info.Env(), true);
  });
}

// updateBatch(keys, values, count, flags?): keys and values are the concatenated entries.
Napi::Value BpfMap::UpdateBatch(const Napi::CallbackInfo& info) {
  auto keys = info[0].As<Napi::Buffer<uint8_t>>();
  auto values = info[1].As<Napi::Buffer<uint8_t>>();
  uint32_t count = info[2].As<Napi::Number>().Uint32Value();
  uint64_t flags = info.Length() > 3 && info[3].IsNumber() ? static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value()) : uint64_t(BPF_ANY);
  if (keys.Length() != size_t(count) * info_.keySize || values.Length() != size_t(count) * UserValueSize())
    throw Napi::TypeError::New(info.Env(), "map '" + info_.name + "': updateBatch buffers do not hold " +
                                               std::to_string(count) + " entries");
  return Guard(info.Env(), [&] {
    uint32_t done = 0;
    while (done < count) {
      uint32_t n = count - done;
      LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = flags);
      int ret = bpf_map_update_batch(fd(), keys.Data() + size_t(done) * info_.keySize,
                                     values.Data() + size_t(done) * UserValueSize(), &n, &opts);
      done += n;
      if (ret < 0) ThrowSys(errno, "bpf_map_update_batch", "writing " + std::to_string(count) + " entries to map '" + info_.name + "' (" + std::to_string(done) + " written)");
      if (n == 0) break;
    }
    return Napi::Number::New(info.Env(), done);
  });
}

// deleteBatch(keys, count): returns how many existed. Missing keys are skipped, not errors.
Napi::Value BpfMap::DeleteBatch(const Napi::CallbackInfo& info) {
  auto keys = info[0].As<Napi::Buffer<uint8_t>>();
  uint32_t count = info[1].As<Napi::Number>().Uint32Value();
  if (keys.Length() != size_t(count) * info_.keySize)
    throw Napi::TypeError::New(info.Env(), "map '" + info_.name + "': deleteBatch buffer does not hold " +
                                               std::to_string(count) + " keys");
  return Guard(info.Env(), [&] {
    uint32_t at = 0, deleted = 0;
    while (at < count) {
      uint32_t n = count - at;
      int ret = bpf_map_delete_batch(fd(), keys.Data() + size_t(at) * info_.keySize, &n, nullptr);
      at += n;
      deleted += n;
      if (ret < 0) {
        // The kernel stops at the first missing key: skip it and go on.
        if (errno != ENOENT) ThrowSys(errno, "bpf_map_delete_batch", "deleting from map '" + info_.name + "'");
        at++;
      }
    }
    return Napi::Number::New(info.Env(), deleted);
  });
}

// keys(): { keys: Buffer, count }, by walking get_next_key.
Napi::Value BpfMap::Keys(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    std::vector<uint8_t> all, cur(info_.keySize), next(info_.keySize);
    bool first = true;
    uint32_t count = 0;
    while (bpf_map_get_next_key(fd(), first ? nullptr : cur.data(), next.data()) == 0) {
      all.insert(all.end(), next.begin(), next.end());
      cur.swap(next);
      first = false;
      if (++count > info_.maxEntries) break;  // a hash map being rewritten may restart the walk
    }
    if (errno != ENOENT && count <= info_.maxEntries)
      ThrowSys(errno, "bpf_map_get_next_key", "walking map '" + info_.name + "'");
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("keys", CopyBuffer(info.Env(), all.data(), all.size()));
    o.Set("count", count);
    return Napi::Value(o);
  });
}

// dump(): { keys, values, count } of every entry, by batch lookup where the map type has it,
// else by walking keys (entries deleted during the walk are left out).
Napi::Value BpfMap::Dump(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    const size_t ks = info_.keySize, vs = UserValueSize();
    std::vector<uint8_t> keys, values;
    uint32_t count = 0;
    bool batched = true;
    if (info_.type == BPF_MAP_TYPE_HASH || info_.type == BPF_MAP_TYPE_LRU_HASH ||
        info_.type == BPF_MAP_TYPE_PERCPU_HASH || info_.type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
        info_.type == BPF_MAP_TYPE_ARRAY || info_.type == BPF_MAP_TYPE_PERCPU_ARRAY) {
      const uint32_t chunk = 4096;
      std::vector<uint8_t> kb(chunk * ks), vb(chunk * vs);
      // Batch tokens are key-sized for hash maps and 4 bytes for arrays; allocate the larger.
      std::vector<uint8_t> in(std::max<size_t>(ks, 8)), out(std::max<size_t>(ks, 8));
      bool first = true;
      for (;;) {
        uint32_t n = chunk;
        int ret = bpf_map_lookup_batch(fd(), first ? nullptr : in.data(), out.data(), kb.data(), vb.data(), &n, nullptr);
        int err = ret < 0 ? errno : 0;
        if (ret < 0 && err != ENOENT) {
          if (first && (err == EINVAL || err == ENOTSUP || err == EOPNOTSUPP || err == 524)) {
            batched = false;
            break;
          }
          ThrowSys(err, "bpf_map_lookup_batch", "reading map '" + info_.name + "'");
        }
        keys.insert(keys.end(), kb.begin(), kb.begin() + size_t(n) * ks);
        values.insert(values.end(), vb.begin(), vb.begin() + size_t(n) * vs);
        count += n;
        if (err == ENOENT) break;
        in.swap(out);
        first = false;
      }
    } else {
      batched = false;
    }
    if (!batched) {
      keys.clear();
      values.clear();
      count = 0;
      std::vector<uint8_t> cur(ks), next(ks), value(vs);
      bool first = true;
      uint32_t steps = 0;
      while (bpf_map_get_next_key(fd(), first ? nullptr : cur.data(), next.data()) == 0 && steps++ <= info_.maxEntries) {
        if (bpf_map_lookup_elem(fd(), next.data(), value.data()) == 0) {
          keys.insert(keys.end(), next.begin(), next.end());
          values.insert(values.end(), value.begin(), value.end());
          count++;
        }
        cur.swap(next);
        first = false;
      }
    }
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("keys", CopyBuffer(info.Env(), keys.data(), keys.size()));
    o.Set("values", CopyBuffer(info.Env(), values.data(), values.size()));
    o.Set("count", count);
    return Napi::Value(o);
  });
}

void BpfMap::Pin(const Napi::CallbackInfo& info) {
  std::string path = RequireString(info[0], "path");
  Guard(info.Env(), [&] { CheckRet(bpf_obj_pin(fd(), path.c_str()), "bpf_obj_pin", "pinning map '" + info_.name + "' at " + path); });
}

void BpfMap::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace bpfproxy
