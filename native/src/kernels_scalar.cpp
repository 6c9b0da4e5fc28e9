// The scalar reference kernels: the plain statement of the math, accumulating in double.
// They run where no SIMD kernel applies and are the yardstick the SIMD kernels are tested against.
#include "kernel_table.h"
#include "relu_mask.h"

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

// SPEC section 7: relu(v) = v > 0 ? v : 0, and NaN stays NaN.
float relu(float v) { return v > 0.0f || v != v ? v : 0.0f; }

// The forward's epilogue for element `at` of the call (index f.first + at in the tensor):
// pre = v + residual; y = relu(pre) or pre; its mask bit goes to `bits`.
float epilogue(float v, int64_t at, const ForwardFusion& f, MaskWriter& bits) {
  if (f.residual) v += f.residual[at];
  if (f.relu) v = relu(v);
  if (f.mask) bits.push(v > 0.0f, 1);
  return v;
}

// The backward's incoming gradient for element `at` of the call: g = mask bit ? dy : 0.
float masked(const float* dy, int64_t at, const BackwardFusion& f) {
  if (!f.mask) return dy[at];
  const int64_t i = f.first + at;
  return (f.mask[i >> 3] >> (i & 7)) & 1 ? dy[at] : 0.0f;
}

GradSums grad_sums(const float* dy, const float* x, int64_t n, int64_t step, float center,
                   const BackwardFusion& f) {
  GradSums s{0.0, 0.0};
  for (int64_t i = 0; i < n; ++i) {
    const float g = masked(dy, i * step, f);
    s.dy += g;
    s.dy_xc += static_cast<double>(g) * (static_cast<double>(x[i * step]) - center);
  }
  return s;
}

// dx (and dresidual) for element `at` of the call; x null: constant statistics.
void dx_fused_at(const float* dy, const float* x, float* dx, int64_t at, const DxCoeffs& k,
                 const BackwardFusion& f) {
  const float g = masked(dy, at, f);
  dx[at] = x ? dx_of(g, x[at], k.center, k.k_dy, k.k_xc, k.k_const)
             : static_cast<float>(static_cast<double>(g) * k.k_dy + k.k_const);
  if (f.dresidual) f.dresidual[at] = g;
}

// A writer for the mask bits from element f.first + at on, when there is a mask.
MaskWriter writer(const ForwardFusion& f, int64_t at) {
  return f.mask ? MaskWriter(f.mask, f.first + at) : MaskWriter(nullptr, 0);
}

constexpr BackwardFusion kUnfused{nullptr, 0, nullptr};

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
    out[r] = grad_sums(dy + r * len, x + r * len, len, 1, center[r], kUnfused);
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
                 const RowsAffine& a, Stores /*plain stores only*/) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < width; ++c)
      y[r * stride + c] = affine(x[r * stride + c], a.center[c], a.scale[c], a.shift[c]);
}

void rows_grad_sums(const float* dy, const float* x, int64_t rows, int64_t width, int64_t stride,
                    const float* center, double* sum_dy, double* sum_dy_xc,
                    float* /*scratch*/) {
  for (int64_t c = 0; c < width; ++c) {
    const GradSums s = grad_sums(dy + c, x + c, rows, stride, center[c], kUnfused);
    sum_dy[c] = s.dy;
    sum_dy_xc[c] = s.dy_xc;
  }
}

void rows_dx(const float* dy, const float* x, float* dx, int64_t rows, int64_t width,
             int64_t stride, const RowsDxCoeffs& k, Stores /*plain stores only*/) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < width; ++c) {
      const int64_t at = r * stride + c;
      dx[at] = dx_of(dy[at], x[at], k.center[c], k.k_dy[c], k.k_xc[c], k.k_const[c]);
    }
}

void runs_affine_fused(const float* x, float* y, int64_t count, int64_t len, const Affine* a,
                       const ForwardFusion& f, Stores /*plain stores only*/) {
  MaskWriter bits = writer(f, 0);
  for (int64_t r = 0; r < count; ++r)
    for (int64_t i = r * len; i < (r + 1) * len; ++i)
      y[i] = epilogue(affine(x[i], a[r].center, a[r].scale, a[r].shift), i, f, bits);
  if (f.mask) bits.finish();
}

void rows_affine_fused(const float* x, float* y, int64_t rows, int64_t width, int64_t stride,
                       const RowsAffine& a, const ForwardFusion& f, Stores /*plain stores only*/) {
  for (int64_t r = 0; r < rows; ++r) {
    MaskWriter bits = writer(f, r * stride);
    for (int64_t c = 0; c < width; ++c) {
      const int64_t at = r * stride + c;
      y[at] = epilogue(affine(x[at], a.center[c], a.scale[c], a.shift[c]), at, f, bits);
    }
    if (f.mask) bits.finish();
  }
}

void runs_grad_sums_fused(const float* dy, const float* x, int64_t count, int64_t len,
                          const float* center, const BackwardFusion& f, GradSums* out) {
  for (int64_t r = 0; r < count; ++r) {
    const BackwardFusion run{f.mask, f.first + r * len, nullptr};
    out[r] = grad_sums(dy + r * len, x + r * len, len, 1, center[r], run);
  }
}

void rows_grad_sums_fused(const float* dy, const float* x, int64_t rows, int64_t width,
                          int64_t stride, const float* center, double* sum_dy, double* sum_dy_xc,
                          float* /*scratch*/, const BackwardFusion& f) {
  for (int64_t c = 0; c < width; ++c) {
    const BackwardFusion column{f.mask, f.first + c, nullptr};
    const GradSums s = grad_sums(dy + c, x + c, rows, stride, center[c], column);
    sum_dy[c] = s.dy;
    sum_dy_xc[c] = s.dy_xc;
  }
}

void runs_dx_fused(const float* dy, const float* x, float* dx, int64_t count, int64_t len,
                   const DxCoeffs* k, const BackwardFusion& f, Stores /*plain stores only*/) {
  for (int64_t r = 0; r < count; ++r)
    for (int64_t i = r * len; i < (r + 1) * len; ++i) dx_fused_at(dy, x, dx, i, k[r], f);
}

void rows_dx_fused(const float* dy, const float* x, float* dx, int64_t rows, int64_t width,
                   int64_t stride, const RowsDxCoeffs& k, const BackwardFusion& f, Stores /*plain stores only*/) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < width; ++c) {
      const DxCoeffs column{k.center[c], k.k_dy[c], k.k_xc[c], k.k_const[c]};
      dx_fused_at(dy, x, dx, r * stride + c, column, f);
    }
}

}  // namespace

const KernelTable kScalarKernels = {
    "scalar",          runs_moments,         runs_affine,          runs_grad_sums,
    runs_dx,           rows_moments,         rows_affine,          rows_grad_sums,
    rows_dx,           runs_affine_fused,    rows_affine_fused,    runs_grad_sums_fused,
    rows_grad_sums_fused, runs_dx_fused,     rows_dx_fused,
};

}  // namespace bn
