# node-gyp build (the shipping build; prebuildify drives it). Sources and per-ISA flags come
# from sources.json, which CMakeLists.txt reads too. Each ISA's kernels are a static library
# compiled with that ISA's flags, so one binary runs on any CPU of the architecture.
{
  "target_defaults": {
    "cflags_cc": ["-O3", "-fPIC", "-fopenmp", "-Wall", "-Wextra"],
    "cflags_cc!": ["-fno-exceptions"],
    "defines": ["NAPI_VERSION=8"]
  },
  "targets": [
    {
      "target_name": "batchnorm",
      "sources": ["<!@(node scripts/sources.js common)"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "ldflags": ["-fopenmp"],
      "conditions": [
        ["target_arch=='x64'", {"dependencies": ["kernels_avx2", "kernels_avx512"]}],
        ["target_arch=='arm64'", {"dependencies": ["kernels_neon"]}]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "kernels_avx2",
          "type": "static_library",
          "sources": ["<!@(node scripts/sources.js sources avx2)"],
          "cflags_cc": ["<!@(node scripts/sources.js flags avx2)"]
        },
        {
          "target_name": "kernels_avx512",
          "type": "static_library",
          "sources": ["<!@(node scripts/sources.js sources avx512)"],
          "cflags_cc": ["<!@(node scripts/sources.js flags avx512)"]
        }
      ]
    }],
    ["target_arch=='arm64'", {
      "targets": [
        {
          "target_name": "kernels_neon",
          "type": "static_library",
          "sources": ["<!@(node scripts/sources.js sources neon)"]
        }
      ]
    }]
  ]
}
