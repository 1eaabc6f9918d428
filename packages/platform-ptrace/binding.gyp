{
  "targets": [
    {
      "target_name": "tsvisor_ptrace",
      "sources": [
        "native/addon.cc",
        "native/context.cc",
        "native/error.cc",
        "native/stub.cc",
        "native/stub-image.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"]
    }
  ]
}
