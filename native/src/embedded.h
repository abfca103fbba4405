// The BPF objects compiled from bpf/ and embedded in the addon (see native/tools/build-bpf.mjs).
#pragma once

namespace bpfproxy {

struct EmbeddedObject {
  const char* name;
  const unsigned char* start;
  const unsigned char* end;
  const char* sha256;
};

// Terminated by an entry whose name is nullptr.
extern const EmbeddedObject kEmbeddedObjects[];

}  // namespace bpfproxy
