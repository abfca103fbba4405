// BpfObject: one BPF ELF object (embedded or given as bytes), opened with its load-time
// configuration — rodata variables, map sizes, map pin paths — then loaded into the kernel.
// load() runs on a worker thread (the verifier can take a while); everything else is synchronous.
#pragma once

#include <bpf/libbpf.h>
#include <napi.h>

#include <atomic>
#include <string>
#include <vector>

namespace bpfproxy {

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Init(Napi::Env env);

  // new BpfObject(elf: Buffer, name: string, options?: { rodata?, maps? })
  explicit BpfObject(const Napi::CallbackInfo& info);
  ~BpfObject() override;

 private:
  friend class LoadWorker;

  Napi::Value Name(const Napi::CallbackInfo& info);
  Napi::Value Loaded(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value RodataVariables(const Napi::CallbackInfo& info);
  Napi::Value TypeLayout(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Map(const Napi::CallbackInfo& info);
  Napi::Value Program(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  void ApplyRodata(Napi::Env env, const Napi::Object& values);
  void ApplyMapOptions(Napi::Env env, const Napi::Object& maps);
  // Before load: a pinned map is reused only if it has exactly the layout this object declares.
  void CheckPinnedMaps();
  void DoLoad();
  struct bpf_object* obj() const;

  std::vector<uint8_t> elf_;  // libbpf reads the ELF image while opening and loading
  std::string name_;
  struct bpf_object* obj_ = nullptr;
  bool loaded_ = false;
  std::atomic<bool> busy_{false};
};

}  // namespace bpfproxy
