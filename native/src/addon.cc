// The addon's entry: registers the wrapped classes and the module functions.
#include "addon.h"

#include <bpf/libbpf.h>

#include "embedded.h"
#include "errors.h"
#include "libbpf_log.h"
#include "link.h"
#include "lock.h"
#include "map.h"
#include "netns.h"
#include "object.h"
#include "program.h"

namespace bpfproxy {

Napi::Buffer<uint8_t> CopyBuffer(Napi::Env env, const void* data, size_t len) {
  return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(data), len);
}

std::string RequireString(const Napi::Value& v, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// embeddedObjects() → { name: { elf: Buffer, sha256 } }; the Buffers point at the addon's
// read-only data, no copy.
static Napi::Value EmbeddedObjects(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  for (const EmbeddedObject* o = kEmbeddedObjects; o->name != nullptr; o++) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("elf", CopyBuffer(env, o->start, static_cast<size_t>(o->end - o->start)));
    entry.Set("sha256", o->sha256);
    out.Set(o->name, entry);
  }
  return out;
}

static Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), libbpf_version_string());
}

static Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfLogger();
  auto* data = new AddonData();
  env.SetInstanceData(data);

  Napi::Function mapClass = BpfMap::Init(env);
  Napi::Function programClass = BpfProgram::Init(env);
  Napi::Function linkClass = BpfLink::Init(env);
  data->mapClass = Napi::Persistent(mapClass);
  data->programClass = Napi::Persistent(programClass);
  data->linkClass = Napi::Persistent(linkClass);

  exports.Set("BpfObject", BpfObject::Init(env));
  exports.Set("BpfMap", mapClass);
  exports.Set("BpfProgram", programClass);
  exports.Set("BpfLink", linkClass);
  exports.Set("setErrorClass", Napi::Function::New(env, RegisterErrorClass));
  exports.Set("embeddedObjects", Napi::Function::New(env, EmbeddedObjects));
  exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("netnsRun", Napi::Function::New(env, NetnsRun));
  exports.Set("ifNameToIndex", Napi::Function::New(env, IfNameToIndex));
  exports.Set("flockExclusive", Napi::Function::New(env, FlockExclusive));
  exports.Set("flockRelease", Napi::Function::New(env, FlockRelease));
  exports.Set("tcAttach", Napi::Function::New(env, TcAttach));
  exports.Set("tcDetach", Napi::Function::New(env, TcDetach));
  exports.Set("tcQuery", Napi::Function::New(env, TcQuery));
  exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery));
  return exports;
}

}  // namespace bpfproxy

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return bpfproxy::Init(env, exports); }

NODE_API_MODULE(bpfproxy, InitAddon)
