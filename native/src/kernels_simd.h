// The SIMD kernels, written once over a vector abstraction `V` and compiled once per ISA
// (kernels_avx2.cpp, kernels_avx512.cpp, kernels_neon.cpp, each with its own flags).
//
// V provides: type `F` (a vector of W floats), `W`, zero(), set1(f), load(p), store(p, v),
// load_tail(p, n, fill) (lanes >= n take `fill`), store_tail(p, v, n), add, sub, mul,
// fma(a, b, c) = a*b + c, and sum_lanes(v) (the lanes summed in double).
//
// Precision plan (SPEC section 5): float accumulators only ever sum a bounded number of terms
// (runs: one chunk of at most a few thousand elements spread over 4*W lanes; rows: a sub-block
// of kRowsSubBlock rows), then everything is carried in double. Moments are taken about the
// chunk's own float mean (a second pass over a chunk that sits in L1), so no cancellation
// occurs even when the mean is 10^4 times the standard deviation.
//
// Everything here has internal linkage (anonymous namespace) and avoids std:: inline helpers:
// each ISA's translation unit must get its own copy, never one the linker merged from a TU
// compiled with wider instructions than the CPU has.
#pragma once
#include <cstdint>

#include "kernel_table.h"

namespace bn {
namespace {

inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
// Clamps rounding noise below zero; NaN passes through (NaN in the data must propagate).
inline double nonnegative(double v) { return v < 0.0 ? 0.0 : v; }
inline bool is_finite(float v) { return v - v == 0.0f; }

// Rows are processed in sub-blocks of this many rows, accumulated in float, then merged into
// double; it bounds the number of float additions per lane.
constexpr int64_t kRowsSubBlock = 32;

template <class V>
struct SimdKernels {
  using F = typename V::F;
  static constexpr int64_t W = V::W;

  // Calls body(offset, load, store) over [0, len): full vectors, then one masked tail.
  // `load(p, fill)` reads a vector whose lanes past the end take `fill`.
  template <class Body>
  static inline void for_vectors(int64_t len, Body&& body) {
    int64_t i = 0;
    for (; i + W <= len; i += W)
      body(
          i, [](const float* p, F) { return V::load(p); },
          [](float* p, F v) { V::store(p, v); });
    const int64_t rest = len - i;
    if (rest > 0)
      body(
          i, [rest](const float* p, F fill) { return V::load_tail(p, rest, fill); },
          [rest](float* p, F v) { V::store_tail(p, v, rest); });
  }

  // Sum over a run with four independent accumulators (hides add latency), plus the tail.
  // `term(offset, load)` returns the vector to accumulate at `offset`.
  template <class Term>
  static inline F sum_run(int64_t len, Term&& term) {
    F a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
    int64_t i = 0;
    const auto full = [](const float* p, F) { return V::load(p); };
    for (; i + 4 * W <= len; i += 4 * W) {
      a0 = V::add(a0, term(i, full));
      a1 = V::add(a1, term(i + W, full));
      a2 = V::add(a2, term(i + 2 * W, full));
      a3 = V::add(a3, term(i + 3 * W, full));
    }
    for (; i + W <= len; i += W) a0 = V::add(a0, term(i, full));
    const int64_t rest = len - i;
    if (rest > 0)
      a1 = V::add(a1, term(i, [rest](const float* p, F fill) { return V::load_tail(p, rest, fill); }));
    return V::add(V::add(a0, a1), V::add(a2, a3));
  }

  static Moments runs_moments(const float* x, int64_t count, int64_t len, int64_t stride) {
    const double n = static_cast<double>(count * len);
    // Pass 1: a float estimate K of the mean.
    double sum = 0.0;
    for (int64_t r = 0; r < count; ++r) {
      const float* run = x + r * stride;
      sum += V::sum_lanes(sum_run(len, [&](int64_t i, auto load) { return load(run + i, V::zero()); }));
    }
    const float k = static_cast<float>(sum / n);
    // Pass 2 (from L1): shifted sums of d = x - K and d^2. Tail lanes load K, so d = 0 there.
    const F kv = V::set1(k);
    double s1 = 0.0, s2 = 0.0;
    for (int64_t r = 0; r < count; ++r) {
      const float* run = x + r * stride;
      F d1[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
      F d2[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
      int64_t i = 0;
      for (; i + 4 * W <= len; i += 4 * W)
        for (int u = 0; u < 4; ++u) {
          const F d = V::sub(V::load(run + i + u * W), kv);
          d1[u] = V::add(d1[u], d);
          d2[u] = V::fma(d, d, d2[u]);
        }
      if (i < len)
        for_vectors(len - i, [&](int64_t j, auto load, auto) {
          const F d = V::sub(load(run + i + j, kv), kv);
          d1[0] = V::add(d1[0], d);
          d2[0] = V::fma(d, d, d2[0]);
        });
      s1 += V::sum_lanes(V::add(V::add(d1[0], d1[1]), V::add(d1[2], d1[3])));
      s2 += V::sum_lanes(V::add(V::add(d2[0], d2[1]), V::add(d2[2], d2[3])));
    }
    // Scalar math: mean = K + mean(d); M2 = sum(d^2) - sum(d)^2 / n. A non-finite K (Inf or
    // NaN in the data) leaves d meaningless; the plain sum then carries the IEEE result.
    const double mean = is_finite(k) ? k + s1 / n : sum / n;
    return {mean, nonnegative(s2 - s1 * s1 / n)};
  }

  // Scalar math: y = ((x - hi) - lo) * scale + shift.
  static void runs_affine(const float* x, float* y, int64_t count, int64_t len, int64_t stride,
                          Affine a) {
    const F hi = V::set1(a.mean_hi), lo = V::set1(a.mean_lo);
    const F scale = V::set1(a.scale), shift = V::set1(a.shift);
    for (int64_t r = 0; r < count; ++r) {
      const float* in = x + r * stride;
      float* out = y + r * stride;
      for_vectors(len, [&](int64_t i, auto load, auto store) {
        const F xc = V::sub(V::sub(load(in + i, hi), hi), lo);
        store(out + i, V::fma(xc, scale, shift));
      });
    }
  }

  // Scalar math: sum(dy), sum(dy * ((x - hi) - lo)). Tail lanes load dy = 0, x = hi.
  static GradSums runs_grad_sums(const float* dy, const float* x, int64_t count, int64_t len,
                                 int64_t stride, float mean_hi, float mean_lo) {
    const F hi = V::set1(mean_hi), lo = V::set1(mean_lo);
    GradSums s{0.0, 0.0};
    for (int64_t r = 0; r < count; ++r) {
      const float* g = dy + r * stride;
      const float* in = x + r * stride;
      s.dy += V::sum_lanes(sum_run(len, [&](int64_t i, auto load) { return load(g + i, V::zero()); }));
      s.dy_xc += V::sum_lanes(sum_run(len, [&](int64_t i, auto load) {
        const F xc = V::sub(V::sub(load(in + i, hi), hi), lo);
        return V::mul(load(g + i, V::zero()), xc);
      }));
    }
    return s;
  }

  // Scalar math: dx = dy * k_dy + ((x - hi) - lo) * k_xc + k_const.
  static void runs_dx(const float* dy, const float* x, float* dx, int64_t count, int64_t len,
                      int64_t stride, DxCoeffs k) {
    const F hi = V::set1(k.mean_hi), lo = V::set1(k.mean_lo);
    const F k_dy = V::set1(k.k_dy), k_xc = V::set1(k.k_xc), k_const = V::set1(k.k_const);
    for (int64_t r = 0; r < count; ++r) {
      const float* g = dy + r * stride;
      const float* in = x + r * stride;
      float* out = dx + r * stride;
      for_vectors(len, [&](int64_t i, auto load, auto store) {
        const F xc = V::sub(V::sub(load(in + i, hi), hi), lo);
        store(out + i, V::fma(xc, k_xc, V::fma(load(g + i, V::zero()), k_dy, k_const)));
      });
    }
  }

  // Rows: for each group of W channels (a column strip), each sub-block of rows is read twice
  // (float mean, then shifted sums; the second read hits L1) and merged into double by Chan's
  // rule, lane by lane:
  //   delta = mean_b - mean;  mean += delta * n_b / n';  M2 += M2_b + delta^2 * n * n_b / n'.
  static void rows_moments(const float* x, int64_t rows, int64_t width, int64_t stride,
                           double* mean, double* m2) {
    for_vectors(width, [&](int64_t c, auto load, auto) {
      double* mean_c = mean + c;
      double* m2_c = m2 + c;
      const int64_t lanes = min_i64(W, width - c);
      for (int64_t r0 = 0; r0 < rows; r0 += kRowsSubBlock) {
        const int64_t nb = min_i64(kRowsSubBlock, rows - r0);
        const float* block = x + r0 * stride + c;
        F sum = V::zero();
        for (int64_t r = 0; r < nb; ++r) sum = V::add(sum, load(block + r * stride, V::zero()));
        const F kv = V::mul(sum, V::set1(1.0f / static_cast<float>(nb)));
        F s1a = V::zero(), s1b = V::zero(), s2a = V::zero(), s2b = V::zero();
        int64_t r = 0;
        for (; r + 2 <= nb; r += 2) {
          const F da = V::sub(load(block + r * stride, V::zero()), kv);
          const F db = V::sub(load(block + (r + 1) * stride, V::zero()), kv);
          s1a = V::add(s1a, da);
          s1b = V::add(s1b, db);
          s2a = V::fma(da, da, s2a);
          s2b = V::fma(db, db, s2b);
        }
        if (r < nb) {
          const F d = V::sub(load(block + r * stride, V::zero()), kv);
          s1a = V::add(s1a, d);
          s2a = V::fma(d, d, s2a);
        }
        alignas(64) float k[W], s1[W], s2[W];
        V::store(k, kv);
        V::store(s1, V::add(s1a, s1b));
        V::store(s2, V::add(s2a, s2b));
        const double n_b = static_cast<double>(nb), n_old = static_cast<double>(r0);
        for (int64_t l = 0; l < lanes; ++l) {
          const double mean_b = is_finite(k[l]) ? k[l] + s1[l] / n_b : k[l];
          const double m2_b = nonnegative(s2[l] - static_cast<double>(s1[l]) * s1[l] / n_b);
          if (r0 == 0) {
            mean_c[l] = mean_b;
            m2_c[l] = m2_b;
          } else {
            const double n_new = n_old + n_b;
            const double delta = mean_b - mean_c[l];
            mean_c[l] += delta * n_b / n_new;
            m2_c[l] += m2_b + delta * delta * n_old * n_b / n_new;
          }
        }
      }
    });
  }

  static void rows_affine(const float* x, float* y, int64_t rows, int64_t width, int64_t stride,
                          RowsAffine a) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* in = x + r * stride;
      float* out = y + r * stride;
      for_vectors(width, [&](int64_t c, auto load, auto store) {
        const F hi = load(a.mean_hi + c, V::zero());
        const F xc = V::sub(V::sub(load(in + c, V::zero()), hi), load(a.mean_lo + c, V::zero()));
        store(out + c, V::fma(xc, load(a.scale + c, V::zero()), load(a.shift + c, V::zero())));
      });
    }
  }

  static void rows_grad_sums(const float* dy, const float* x, int64_t rows, int64_t width,
                             int64_t stride, const float* mean_hi, const float* mean_lo,
                             double* sum_dy, double* sum_dy_xc) {
    for_vectors(width, [&](int64_t c, auto load, auto) {
      const int64_t lanes = min_i64(W, width - c);
      const F hi = load(mean_hi + c, V::zero()), lo = load(mean_lo + c, V::zero());
      for (int64_t l = 0; l < lanes; ++l) sum_dy[c + l] = sum_dy_xc[c + l] = 0.0;
      for (int64_t r0 = 0; r0 < rows; r0 += kRowsSubBlock) {
        const int64_t nb = min_i64(kRowsSubBlock, rows - r0);
        F sdy = V::zero(), sdyx = V::zero();
        for (int64_t r = r0; r < r0 + nb; ++r) {
          const F g = load(dy + r * stride + c, V::zero());
          const F xc = V::sub(V::sub(load(x + r * stride + c, V::zero()), hi), lo);
          sdy = V::add(sdy, g);
          sdyx = V::fma(g, xc, sdyx);
        }
        alignas(64) float a[W], b[W];
        V::store(a, sdy);
        V::store(b, sdyx);
        for (int64_t l = 0; l < lanes; ++l) {
          sum_dy[c + l] += a[l];
          sum_dy_xc[c + l] += b[l];
        }
      }
    });
  }

  static void rows_dx(const float* dy, const float* x, float* dx, int64_t rows, int64_t width,
                      int64_t stride, RowsDxCoeffs k) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* g = dy + r * stride;
      const float* in = x + r * stride;
      float* out = dx + r * stride;
      for_vectors(width, [&](int64_t c, auto load, auto store) {
        const F xc = V::sub(V::sub(load(in + c, V::zero()), load(k.mean_hi + c, V::zero())),
                            load(k.mean_lo + c, V::zero()));
        const F base = V::fma(load(g + c, V::zero()), load(k.k_dy + c, V::zero()),
                              load(k.k_const + c, V::zero()));
        store(out + c, V::fma(xc, load(k.k_xc + c, V::zero()), base));
      });
    }
  }

  static constexpr KernelTable table(const char* isa) {
    return {isa,          runs_moments, runs_affine,    runs_grad_sums, runs_dx,
            rows_moments, rows_affine,  rows_grad_sums, rows_dx};
  }
};

}  // namespace
}  // namespace bn
