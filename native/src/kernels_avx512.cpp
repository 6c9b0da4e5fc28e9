// AVX-512 kernels (16 floats per vector, masked tails). Compiled with -mavx512f (plus AVX2/FMA
// for the shared helpers); dispatch.cpp only selects this table when cpuid reports AVX512F and
// the OS saves the opmask and ZMM state (XCR0 bits 5-7).
#include <immintrin.h>

#include "kernels_simd.h"

namespace bn {
namespace {

struct Avx512 {
  using F = __m512;
  static constexpr int64_t W = 16;

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  // Lanes below n are active; masked-off lanes are never touched in memory.
  static __mmask16 mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static F load_tail(const float* p, int64_t n, F fill) {
    return _mm512_mask_loadu_ps(fill, mask(n), p);
  }
  static void store_tail(float* p, F v, int64_t n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  // Masked stores are cheap, and 64-byte stores that split cache lines are not.
  static constexpr bool kAlignStores = true;
  // Non-temporal stores (p 64-byte aligned).
  static constexpr bool kStreams = true;
  static void stream(float* p, F v) { _mm512_stream_ps(p, v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  // v > 0 ? v : 0 with NaN kept: lanes "not <= 0" (greater, or unordered) keep v; -0 gives +0.
  static F relu(F v) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NLE_UQ), v); }
  static uint32_t positive_bits(F v) { return _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ); }
  static F select_bits(uint32_t bits, F v) { return _mm512_maskz_mov_ps(static_cast<__mmask16>(bits), v); }
  // The masked forms take an explicit source instead of an undefined one, which keeps GCC 12's
  // -Wmaybe-uninitialized quiet about its own intrinsic headers.
  static __m256d half(__m512d v, int which) {
    return which ? _mm512_mask_extractf64x4_pd(_mm256_setzero_pd(), 0xF, v, 1)
                 : _mm512_mask_extractf64x4_pd(_mm256_setzero_pd(), 0xF, v, 0);
  }
  static double sum_lanes(F v) {
    const __m512d bits = _mm512_castps_pd(v);
    const __m512d wide = _mm512_add_pd(_mm512_maskz_cvtps_pd(0xFF, _mm256_castpd_ps(half(bits, 0))),
                                       _mm512_maskz_cvtps_pd(0xFF, _mm256_castpd_ps(half(bits, 1))));
    const __m256d d = _mm256_add_pd(half(wide, 0), half(wide, 1));
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
  }
};

}  // namespace

const KernelTable kAvx512Kernels = SimdKernels<Avx512>::table("avx512");

}  // namespace bn
