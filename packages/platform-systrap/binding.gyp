{
  "targets": [
    {
      "target_name": "systrap",
      "sources": [
        "src/native/addon.cc",
        "src/native/address_space.cc",
        "src/native/context.cc",
        "src/native/filter.cc",
        "src/native/probe.cc",
        "src/native/stub.cc",
        "src/native/timing.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=gnu++20", "-fexceptions", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
    }
  ]
}
