{
  "targets": [
    {
      "target_name": "sentry",
      "sources": [
        "native/addon.cc",
        "native/memory-file.cc",
        "native/host-fs.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"]
    }
  ]
}
