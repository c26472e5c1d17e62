{
  # p5rec native kernels (N-API, plain C API: no node-addon-api).
  # Built by `npm install` through scripts/build-native.mjs, which turns a
  # failed build into one warning (the engine then uses its wasm kernels).
  # No -march: the SIMD kernels carry per-function target attributes and are
  # picked at load time, so the binary runs on any x86-64.
  "targets": [
    {
      "target_name": "p5rec_native",
      "sources": ["native/p5rec_native.cc", "native/gemm.cc", "native/pool.cc", "native/adamw.cc", "native/attention.cc"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags": ["-O3"],
      "cflags_cc": ["-O3", "-fno-math-errno"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_OPTIMIZATION_LEVEL": "3",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "10.15"
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "Optimization": 2, "AdditionalOptions": ["/std:c++17"] }
      }
    }
  ]
}
