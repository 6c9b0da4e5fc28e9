// The scalar reference kernels: the plain statement of the math, accumulating in double.
// They run where no SIMD kernel applies and are the yardstick the SIMD kernels are tested against.
#include "kernel_table.h"

namespace bn {
namespace {

// Moments of `n` floats `step` apart: two passes in double, the mean, then the squared
// deviations from it.
Moments moments(const float* x, int64_t n, int64_t step) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i * step];
  const double mean = sum / static_cast<double>(n);
  double m2 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = x[i * step] - mean;
    m2 += d * d;
  }
  return {mean, m2};
}

// Scalar math: y = (x - center) * scale + shift.
float affine(float x, float center, float scale, float shift) {
  return static_cast<float>((static_cast<double>(x) - center) * scale + shift);
}

// Scalar math: dx = dy * k_dy + (x - center) * k_xc + k_const.
float dx_of(float dy, float x, float center, float k_dy, float k_xc, float k_const) {
  return static_cast<float>(static_cast<double>(dy) * k_dy +
                            (static_cast<double>(x) - center) * k_xc + k_const);
}

GradSums grad_sums(const float* dy, const float* x, int64_t n, int64_t step, float center) {
  GradSums s{0.0, 0.0};
  for (int64_t i = 0; i < n; ++i) {
    s.dy += dy[i * step];
    s.dy_xc += static_cast<double>(dy[i * step]) * (static_cast<double>(x[i * step]) - center);
  }
  return s;
}

void runs_moments(const float* x, int64_t count, int64_t len, Moments* out) {
  for (int64_t r = 0; r < count; ++r) out[r] = moments(x + r * len, len, 1);
}

void runs_affine(const float* x, float* y, int64_t count, int64_t len, const Affine* a,
                 Stores /*plain stores only*/) {
  for (int64_t r = 0; r < count; ++r)
    for (int64_t i = r * len; i < (r + 1) * len; ++i)
      y[i] = affine(x[i], a[r].center, a[r].scale, a[r].shift);
}

void runs_grad_sums(const float* dy, const float* x, int64_t count, int64_t len,
                    const float* center, GradSums* out) {
  for (int64_t r = 0; r < count; ++r)
    out[r] = grad_sums(dy + r * len, x + r * len, len, 1, center[r]);
}

void runs_dx(const float* dy, const float* x, float* dx, int64_t count, int64_t len,
             const DxCoeffs* k, Stores /*plain stores only*/) {
  for (int64_t r = 0; r < count; ++r)
    for (int64_t i = r * len; i < (r + 1) * len; ++i)
      dx[i] = dx_of(dy[i], x[i], k[r].center, k[r].k_dy, k[r].k_xc, k[r].k_const);
}

void rows_moments(const float* x, int64_t rows, int64_t width, int64_t stride, double* mean,
                  double* m2, float* /*scratch*/) {
  for (int64_t c = 0; c < width; ++c) {
    const Moments m = moments(x + c, rows, stride);
    mean[c] = m.mean;
    m2[c] = m.m2;
  }
}

void rows_affine(const float* x, float* y, int64_t rows, int64_t width, int64_t stride,
                 RowsAffine a, Stores /*plain stores only*/) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < width; ++c)
      y[r * stride + c] = affine(x[r * stride + c], a.center[c], a.scale[c], a.shift[c]);
}

void rows_grad_sums(const float* dy, const float* x, int64_t rows, int64_t width, int64_t stride,
                    const float* center, double* sum_dy, double* sum_dy_xc,
                    float* /*scratch*/) {
  for (int64_t c = 0; c < width; ++c) {
    const GradSums s = grad_sums(dy + c, x + c, rows, stride, center[c]);
    sum_dy[c] = s.dy;
    sum_dy_xc[c] = s.dy_xc;
  }
}

void rows_dx(const float* dy, const float* x, float* dx, int64_t rows, int64_t width,
             int64_t stride, RowsDxCoeffs k, Stores /*plain stores only*/) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < width; ++c) {
      const int64_t at = r * stride + c;
      dx[at] = dx_of(dy[at], x[at], k.center[c], k.k_dy[c], k.k_xc[c], k.k_const[c]);
    }
}

}  // namespace

const KernelTable kScalarKernels = {
    "scalar",     runs_moments, runs_affine,    runs_grad_sums, runs_dx,
    rows_moments, rows_affine,  rows_grad_sums, rows_dx,
};

}  // namespace bn
