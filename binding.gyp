# The same addon as CMakeLists.txt, built by node-gyp (`npm run build:gyp`). Every source list comes
# from native/sources.json, so the two builds cannot drift apart.
{
  "targets": [
    {
      "target_name": "bpf_static",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./native/sources.json').libbpf.join(' ')\")"],
      "defines": ["<!@(node -p \"require('./native/sources.json').libbpfDefines.join(' ')\")"],
      "include_dirs": ["<!@(node -p \"require('./native/sources.json').libbpfIncludes.join(' ')\")"],
      "cflags": ["-fPIC", "-O2", "-Wno-pointer-arith", "-fvisibility=hidden"],
      "cflags!": ["-fno-exceptions"]
    },
    {
      "target_name": "bpf_objects",
      "type": "none",
      "actions": [
        {
          "action_name": "build_bpf",
          "inputs": ["<!@(node native/tools/bpf-inputs.mjs)", "native/sources.json", "native/tools/build-bpf.mjs"],
          "outputs": ["<(SHARED_INTERMEDIATE_DIR)/bpfproxy/bpf_objects.cc"],
          "action": ["node", "native/tools/build-bpf.mjs", "--out", "<(SHARED_INTERMEDIATE_DIR)/bpfproxy"]
        }
      ]
    },
    {
      "target_name": "bpfproxy",
      "dependencies": ["bpf_static", "bpf_objects"],
      "sources": [
        "<!@(node -p \"require('./native/sources.json').addon.join(' ')\")",
        "<(SHARED_INTERMEDIATE_DIR)/bpfproxy/bpf_objects.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<(SHARED_INTERMEDIATE_DIR)/bpfproxy/include",
        "native/src",
        "native/vendor/libbpf/include/uapi",
        "bpf/include"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-fvisibility=hidden", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "libraries": ["-lelf", "-lz"]
    }
  ]
}
