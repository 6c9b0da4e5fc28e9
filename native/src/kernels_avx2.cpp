// AVX2 + FMA kernels (8 floats per vector). Compiled with -mavx2 -mfma; dispatch.cpp only
// selects this table when cpuid and the OS (XCR0) say AVX and FMA state is usable.
#include <immintrin.h>

#include "kernels_simd.h"

namespace bn {
namespace {

struct Avx2 {
  using F = __m256;
  static constexpr int64_t W = 8;

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  // Lanes below n are active.
  static __m256i mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static F load_tail(const float* p, int64_t n, F fill) {
    const __m256i m = mask(n);
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  // Not vmaskmovps: as a store it is microcoded on AMD (Zen 2/3) and costs more than the
  // whole vector it saves. A few scalar stores from a stack copy are cheap everywhere.
  static void store_tail(float* p, F v, int64_t n) {
    alignas(32) float lanes[W];
    _mm256_store_ps(lanes, v);
    for (int64_t l = 0; l < n; ++l) p[l] = lanes[l];
  }
  // Peeling a masked head to align stores pays only where masked stores are cheap.
  static constexpr bool kAlignStores = false;
  // Non-temporal stores (p 32-byte aligned).
  static constexpr bool kStreams = true;
  static void stream(float* p, F v) { _mm256_stream_ps(p, v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  // v > 0 ? v : 0 with NaN kept: lanes "not <= 0" (greater, or unordered) keep v; -0 gives +0.
  static F relu(F v) { return _mm256_and_ps(v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NLE_UQ)); }
  static uint32_t positive_bits(F v) {
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ)));
  }
  static F select_bits(uint32_t bits, F v) {
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i set = _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), lane_bit);
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(set, lane_bit)));
  }
  static double sum_lanes(F v) {
    const __m256d d = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                                    _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
  }
};

}  // namespace

const KernelTable kAvx2Kernels = SimdKernels<Avx2>::table("avx2");

}  // namespace bn
