{
  "targets": [
    {
      "target_name": "tsvisor_platform_kvm",
      "sources": [
        "native/addon.cc",
        "native/vm.cc",
        "native/address_space.cc",
        "native/vcpu.cc",
        "native/guest.S"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-fexceptions"],
      "cflags!": ["-fno-exceptions"]
    }
  ]
}
