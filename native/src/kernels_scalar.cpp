// The scalar reference kernels: the plain statement of the math, accumulating in double.
// They run where no SIMD kernel applies and are the yardstick the SIMD kernels are tested against.
#include <cmath>

#include "kernel_table.h"

namespace bn {
namespace {

// Two passes in double: the mean, then the squared deviations from it.
Moments runs_moments(const float* x, int64_t count, int64_t len, int64_t stride) {
  double sum = 0.0;
  for (int64_t r = 0; r < count; ++r)
    for (int64_t i = 0; i < len; ++i) sum += x[r * stride + i];
  const double n = static_cast<double>(count * len);
  const double mean = sum / n;
  double m2 = 0.0;
  for (int64_t r = 0; r < count; ++r)
    for (int64_t i = 0; i < len; ++i) {
      const double d = x[r * stride + i] - mean;
      m2 += d * d;
    }
  return {mean, m2};
}

// Scalar math: y = (x - mean) * scale + shift, with mean = hi + lo.
void runs_affine(const float* x, float* y, int64_t count, int64_t len, int64_t stride, Affine a) {
  const double mean = static_cast<double>(a.mean_hi) + a.mean_lo;
  for (int64_t r = 0; r < count; ++r)
    for (int64_t i = 0; i < len; ++i) {
      const int64_t at = r * stride + i;
      y[at] = static_cast<float>((x[at] - mean) * a.scale + a.shift);
    }
}

GradSums runs_grad_sums(const float* dy, const float* x, int64_t count, int64_t len,
                        int64_t stride, float mean_hi, float mean_lo) {
  const double mean = static_cast<double>(mean_hi) + mean_lo;
  GradSums s{0.0, 0.0};
  for (int64_t r = 0; r < count; ++r)
    for (int64_t i = 0; i < len; ++i) {
      const int64_t at = r * stride + i;
      s.dy += dy[at];
      s.dy_xc += dy[at] * (x[at] - mean);
    }
  return s;
}

// Scalar math: dx = dy * k_dy + (x - mean) * k_xc + k_const.
void runs_dx(const float* dy, const float* x, float* dx, int64_t count, int64_t len,
             int64_t stride, DxCoeffs k) {
  const double mean = static_cast<double>(k.mean_hi) + k.mean_lo;
  for (int64_t r = 0; r < count; ++r)
    for (int64_t i = 0; i < len; ++i) {
      const int64_t at = r * stride + i;
      dx[at] = static_cast<float>(dy[at] * static_cast<double>(k.k_dy) +
                                  (x[at] - mean) * k.k_xc + k.k_const);
    }
}

// The rows kernels reuse the runs kernels channel by channel: a channel of a row block is a
// set of `rows` runs of length 1 at the row stride.
void rows_moments(const float* x, int64_t rows, int64_t width, int64_t stride, double* mean,
                  double* m2) {
  for (int64_t c = 0; c < width; ++c) {
    const Moments m = runs_moments(x + c, rows, 1, stride);
    mean[c] = m.mean;
    m2[c] = m.m2;
  }
}

void rows_affine(const float* x, float* y, int64_t rows, int64_t width, int64_t stride,
                 RowsAffine a) {
  for (int64_t c = 0; c < width; ++c)
    runs_affine(x + c, y + c, rows, 1, stride,
                Affine{a.mean_hi[c], a.mean_lo[c], a.scale[c], a.shift[c]});
}

void rows_grad_sums(const float* dy, const float* x, int64_t rows, int64_t width, int64_t stride,
                    const float* mean_hi, const float* mean_lo, double* sum_dy, double* sum_dy_xc) {
  for (int64_t c = 0; c < width; ++c) {
    const GradSums s = runs_grad_sums(dy + c, x + c, rows, 1, stride, mean_hi[c], mean_lo[c]);
    sum_dy[c] = s.dy;
    sum_dy_xc[c] = s.dy_xc;
  }
}

void rows_dx(const float* dy, const float* x, float* dx, int64_t rows, int64_t width,
             int64_t stride, RowsDxCoeffs k) {
  for (int64_t c = 0; c < width; ++c)
    runs_dx(dy + c, x + c, dx + c, rows, 1, stride,
            DxCoeffs{k.mean_hi[c], k.mean_lo[c], k.k_dy[c], k.k_xc[c], k.k_const[c]});
}

}  // namespace

const KernelTable kScalarKernels = {
    "scalar",       runs_moments, runs_affine,    runs_grad_sums, runs_dx,
    rows_moments,   rows_affine,  rows_grad_sums, rows_dx,
};

}  // namespace bn
