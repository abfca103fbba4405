// BpfMap: one BPF map file descriptor, owned. Made from a loaded object, a pin or an id; all
// calls are synchronous (map operations are single syscalls).
#pragma once

#include <linux/bpf.h>
#include <napi.h>

#include <string>

namespace bpfproxy {

struct MapInfo {
  std::string name;
  uint32_t type = 0, id = 0, keySize = 0, valueSize = 0, maxEntries = 0, flags = 0;
  uint32_t btfId = 0, btfKeyTypeId = 0, btfValueTypeId = 0;
};

MapInfo MapInfoOf(int fd);
Napi::Object MapInfoToJs(Napi::Env env, const MapInfo& info);
const char* MapTypeName(uint32_t type);

class BpfMap : public Napi::ObjectWrap<BpfMap> {
 public:
  static Napi::Function Init(Napi::Env env);
  // Takes ownership of fd.
  static Napi::Object New(Napi::Env env, int fd);

  explicit BpfMap(const Napi::CallbackInfo& info);
  ~BpfMap() override;

 private:
  static Napi::Value FromPin(const Napi::CallbackInfo& info);
  static Napi::Value FromId(const Napi::CallbackInfo& info);
  static Napi::Value Create(const Napi::CallbackInfo& info);

  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  void Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info);
  Napi::Value DeleteBatch(const Napi::CallbackInfo& info);
  Napi::Value Keys(const Napi::CallbackInfo& info);
  Napi::Value Dump(const Napi::CallbackInfo& info);
  void Pin(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  int fd() const;
  // Bytes of a value as user space sees it: per-CPU maps hold one 8-aligned slot per possible CPU.
  size_t UserValueSize() const;
  void CheckKey(const Napi::Value& v) const;

  int fd_ = -1;
  MapInfo info_;
};

}  // namespace bpfproxy
