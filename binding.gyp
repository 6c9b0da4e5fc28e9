# node-gyp build (the shipping build; prebuildify drives it). Sources and flags come from
# sources.json, which CMakeLists.txt reads too. Each ISA's kernels are a static library
# compiled with that ISA's flags, so one binary runs on any CPU of the architecture.
#
# batchnorm_portable=true (set by scripts/prebuild.sh through npm_config_batchnorm_portable)
# builds the prebuilt binary: C++ runtime linked in, glibc >= 2.28, and libgomp.so.1 looked
# up first beside the binary ($ORIGIN), where the prebuild ships one.
{
  "variables": {"batchnorm_portable%": "false"},
  "target_defaults": {
    "cflags_cc": ["<!@(node scripts/sources.js cflags)"],
    "cflags_cc!": ["-fno-exceptions"],
    "defines": ["NAPI_VERSION=8"]
  },
  "targets": [
    {
      "target_name": "batchnorm",
      "sources": ["<!@(node scripts/sources.js common)"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "ldflags": ["<!@(node scripts/sources.js ldflags)"],
      "conditions": [
        ["target_arch=='x64'", {"dependencies": ["kernels_avx2", "kernels_avx512"]}],
        ["target_arch=='arm64'", {"dependencies": ["kernels_neon"]}],
        ["batchnorm_portable=='true'", {
          "sources": ["<!@(node scripts/sources.js portable sources)"],
          "ldflags": ["<!@(node scripts/sources.js portable ldflags)", "-Wl,--enable-new-dtags,-rpath,'$$ORIGIN'"]
        }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "kernels_avx2",
          "type": "static_library",
          "sources": ["<!@(node scripts/sources.js isa avx2 sources)"],
          "cflags_cc": ["<!@(node scripts/sources.js isa avx2 flags)"]
        },
        {
          "target_name": "kernels_avx512",
          "type": "static_library",
          "sources": ["<!@(node scripts/sources.js isa avx512 sources)"],
          "cflags_cc": ["<!@(node scripts/sources.js isa avx512 flags)"]
        }
      ]
    }],
    ["target_arch=='arm64'", {
      "targets": [
        {
          "target_name": "kernels_neon",
          "type": "static_library",
          "sources": ["<!@(node scripts/sources.js isa neon sources)"],
          "cflags_cc": ["<!@(node scripts/sources.js isa neon flags)"]
        }
      ]
    }]
  ]
}
