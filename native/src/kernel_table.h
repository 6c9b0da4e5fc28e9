// The micro-kernels every instruction set provides, and the table that holds one ISA's set.
//
// Tensors follow the (outer, C, inner) model: element (o, c, i) lives at (o*C + c)*inner + i.
// Two loop shapes cover every layout:
//   - "runs": inner > 1 (channels-first). One call handles one channel: `count` runs of `len`
//     contiguous floats, run r starting at base + r*stride. All elements share the channel's
//     coefficients; kernels vectorise along the run.
//   - "rows": inner == 1 ([N, C] and channels-last). One call handles `rows` rows of `width`
//     contiguous channels, row r starting at base + r*stride. Kernels vectorise across channels;
//     per-channel coefficients are arrays indexed like the row.
//
// Every kernel is pure: no allocation, no threads, no state; the op layer (batchnorm_ops.cpp)
// owns chunking, threading and the merging of partial results in double precision.
#pragma once
#include <cstdint>

namespace bn {

// Mean and sum of squared deviations (M2) of one chunk, in double.
struct Moments {
  double mean;
  double m2;
};

// Sums that backward needs: sum(dy) and sum(dy * (x - mean)).
struct GradSums {
  double dy;
  double dy_xc;
};

// y = ((x - mean_hi) - mean_lo) * scale + shift.
// The mean is carried as a float pair hi + lo so that x - mean keeps the precision of a double
// mean at float cost: x - hi is exact-then-small when the mean dwarfs the spread (Sterbenz).
struct Affine {
  float mean_hi, mean_lo, scale, shift;
};

// dx = dy * k_dy + ((x - mean_hi) - mean_lo) * k_xc + k_const.
struct DxCoeffs {
  float mean_hi, mean_lo, k_dy, k_xc, k_const;
};

// Per-channel arrays for the rows shape; each is indexed by channel within the row.
struct RowsAffine {
  const float *mean_hi, *mean_lo, *scale, *shift;
};
struct RowsDxCoeffs {
  const float *mean_hi, *mean_lo, *k_dy, *k_xc, *k_const;
};

struct KernelTable {
  const char* isa;

  // Runs shape (one channel per call).
  Moments (*runs_moments)(const float* x, int64_t count, int64_t len, int64_t stride);
  void (*runs_affine)(const float* x, float* y, int64_t count, int64_t len, int64_t stride,
                      Affine a);
  GradSums (*runs_grad_sums)(const float* dy, const float* x, int64_t count, int64_t len,
                             int64_t stride, float mean_hi, float mean_lo);
  void (*runs_dx)(const float* dy, const float* x, float* dx, int64_t count, int64_t len,
                  int64_t stride, DxCoeffs k);

  // Rows shape (width channels per call). Outputs are per-channel arrays of doubles, written
  // (not accumulated).
  void (*rows_moments)(const float* x, int64_t rows, int64_t width, int64_t stride, double* mean,
                       double* m2);
  void (*rows_affine)(const float* x, float* y, int64_t rows, int64_t width, int64_t stride,
                      RowsAffine a);
  void (*rows_grad_sums)(const float* dy, const float* x, int64_t rows, int64_t width,
                         int64_t stride, const float* mean_hi, const float* mean_lo,
                         double* sum_dy, double* sum_dy_xc);
  void (*rows_dx)(const float* dy, const float* x, float* dx, int64_t rows, int64_t width,
                  int64_t stride, RowsDxCoeffs k);
};

// One table per ISA, each defined in its own translation unit compiled with its own flags.
// A table that the build did not compile for this architecture is declared but never linked:
// dispatch.cpp only refers to the ones the target architecture has.
extern const KernelTable kScalarKernels;
#if defined(__x86_64__) || defined(_M_X64)
extern const KernelTable kAvx2Kernels;
extern const KernelTable kAvx512Kernels;
#endif
#if defined(__aarch64__)
extern const KernelTable kNeonKernels;
#endif

}  // namespace bn
