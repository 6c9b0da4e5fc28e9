// NEON kernels for arm64 (4 floats per vector). NEON is part of the AArch64 base ISA, so this
// table needs no runtime check and no extra flags.
#include <arm_neon.h>

#include "kernels_simd.h"

namespace bn {
namespace {

struct Neon {
  using F = float32x4_t;
  static constexpr int64_t W = 4;

  static F zero() { return vdupq_n_f32(0.0f); }
  static F set1(float v) { return vdupq_n_f32(v); }
  static F load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, F v) { vst1q_f32(p, v); }
  // NEON has no masked memory access: tails go through a small buffer.
  static F load_tail(const float* p, int64_t n, F fill) {
    float buffer[W];
    vst1q_f32(buffer, fill);
    for (int64_t l = 0; l < n; ++l) buffer[l] = p[l];
    return vld1q_f32(buffer);
  }
  static void store_tail(float* p, F v, int64_t n) {
    float buffer[W];
    vst1q_f32(buffer, v);
    for (int64_t l = 0; l < n; ++l) p[l] = buffer[l];
  }
  // 16-byte vectors: typed arrays are already that aligned.
  static constexpr bool kAlignStores = false;
  // No streaming stores: the kernels write through the cache.
  static constexpr bool kStreams = false;
  static F add(F a, F b) { return vaddq_f32(a, b); }
  static F sub(F a, F b) { return vsubq_f32(a, b); }
  static F mul(F a, F b) { return vmulq_f32(a, b); }
  static F fma(F a, F b, F c) { return vfmaq_f32(c, a, b); }
  // v > 0 ? v : 0 with NaN kept: clears the lanes <= 0 (false for NaN); -0 gives +0.
  static F relu(F v) {
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(v), vcleq_f32(v, vdupq_n_f32(0.0f))));
  }
  static uint32_t positive_bits(F v) {
    const uint32x4_t lane_bit = {1, 2, 4, 8};
    return vaddvq_u32(vandq_u32(vcgtq_f32(v, vdupq_n_f32(0.0f)), lane_bit));
  }
  static F select_bits(uint32_t bits, F v) {
    const uint32x4_t lane_bit = {1, 2, 4, 8};
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), vtstq_u32(vdupq_n_u32(bits), lane_bit)));
  }
  static double sum_lanes(F v) {
    return vaddvq_f64(vaddq_f64(vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v)));
  }
};

}  // namespace

const KernelTable kNeonKernels = SimdKernels<Neon>::table("neon");

}  // namespace bn
