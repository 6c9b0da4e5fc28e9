// The micro-kernels every instruction set provides, and the table that holds one ISA's set.
//
// Tensors follow the (outer, C, inner) model: element (o, c, i) lives at (o*C + c)*inner + i.
// Two loop shapes cover every layout:
//   - "runs" (inner >= a few vectors, channels-first): a call handles `count` runs of `len`
//     floats lying back to back (run r at x + r*len), each with its own coefficients and
//     outputs, indexed by r. Kernels vectorise along each run.
//   - "rows" (short or unit inner: [N, C], channels-last): a call handles `rows` rows of
//     `width` columns (row r at x + r*stride), with per-column coefficient arrays and outputs.
//     Kernels vectorise across columns.
//
// Every kernel is pure: no allocation, no threads, no state; the op layer (batchnorm_ops.cpp)
// owns chunking, threading and the merging of partial results in double precision.
#pragma once
#include <cstdint>

namespace bn {

// Mean and sum of squared deviations (M2) of one run or column, in double.
struct Moments {
  double mean;
  double m2;
};

// Sums that backward needs: sum(dy) and sum(dy * (x - center)).
struct GradSums {
  double dy;
  double dy_xc;
};

// y = (x - center) * scale + shift.
// `center` is the float nearest the mean; the op layer folds the rest of the mean
// (mean - center) into `shift`. x - center is then exact-then-small when the mean dwarfs the
// spread (Sterbenz), which keeps double precision at float cost.
struct Affine {
  float center, scale, shift;
};

// dx = dy * k_dy + (x - center) * k_xc + k_const.
struct DxCoeffs {
  float center, k_dy, k_xc, k_const;
};

// Per-column coefficient arrays for the rows shape.
struct RowsAffine {
  const float *center, *scale, *shift;
};
struct RowsDxCoeffs {
  const float *center, *k_dy, *k_xc, *k_const;
};

// How elementwise kernels write their output. Streaming (non-temporal) stores send whole cache
// lines straight to memory: no read-for-ownership of the destination, and the inputs stay in
// cache. Worth it only when the data is larger than the cache anyway. A hint: kernels without
// such stores (scalar, NEON) write normally. Streaming stores are weakly ordered and kernels do
// not fence them: a caller that asked for them fences before another thread reads the output.
enum class Stores { kCached, kStreaming };

// The forward's fused epilogue (SPEC section 7): pre = affine(x) + residual; y = relu(pre) or
// pre; mask bit = y > 0. Mask bits are addressed by element index in the whole tensor, so a
// kernel call says which element its x[0] is (`first`).
struct ForwardFusion {
  const float* residual;  // offset like x; null: no residual
  bool relu;
  uint8_t* mask;          // relu only; null: no mask
  int64_t first;
};

// The backward's fused prologue and extra output: g = mask bit ? dy : 0 feeds the ordinary
// backward, and dresidual = g.
struct BackwardFusion {
  const uint8_t* mask;  // null: g = dy
  int64_t first;        // mask bit of the call's dy[0]
  float* dresidual;     // offset like dy; null: not written
};

// Float scratch per column that the rows reductions need.
constexpr int64_t kRowsScratch = 3;

// Structs go by const reference. Passed by value (in memory: they are over 16 bytes), the caller
// built them on the stack field by field and copied them with wider loads: a failed store
// forwarding, which waits for every earlier store to leave the store buffer, the previous
// call's streaming stores included (~0.2 us per call, measured as 10-25% of a fused forward).
// A kernel that stores through the mask's uint8_t* copies them first: such stores may alias them.
struct KernelTable {
  const char* isa;

  // Runs shape: `count` runs of `len` floats, back to back; outputs and coefficients per run.
  void (*runs_moments)(const float* x, int64_t count, int64_t len, Moments* out);
  void (*runs_affine)(const float* x, float* y, int64_t count, int64_t len, const Affine* a,
                      Stores stores);
  void (*runs_grad_sums)(const float* dy, const float* x, int64_t count, int64_t len,
                         const float* center, GradSums* out);
  void (*runs_dx)(const float* dy, const float* x, float* dx, int64_t count, int64_t len,
                  const DxCoeffs* k, Stores stores);

  // Rows shape: outputs are per-column arrays of doubles, written (not accumulated).
  // Reductions take `scratch`: kRowsScratch floats per column, in the caller's thread.
  void (*rows_moments)(const float* x, int64_t rows, int64_t width, int64_t stride, double* mean,
                       double* m2, float* scratch);
  void (*rows_affine)(const float* x, float* y, int64_t rows, int64_t width, int64_t stride,
                      const RowsAffine& a, Stores stores);
  void (*rows_grad_sums)(const float* dy, const float* x, int64_t rows, int64_t width,
                         int64_t stride, const float* center, double* sum_dy, double* sum_dy_xc,
                         float* scratch);
  void (*rows_dx)(const float* dy, const float* x, float* dx, int64_t rows, int64_t width,
                  int64_t stride, const RowsDxCoeffs& k, Stores stores);

  // The fused variants (SPEC section 7): the loops above with the residual add, ReLU, mask or
  // masked gradient, each combination chosen once per call. The dx kernels take x = null for
  // statistics that were constants (dx = g * k_dy + k_const; x is never read).
  void (*runs_affine_fused)(const float* x, float* y, int64_t count, int64_t len, const Affine* a,
                            const ForwardFusion& f, Stores stores);
  void (*rows_affine_fused)(const float* x, float* y, int64_t rows, int64_t width, int64_t stride,
                            const RowsAffine& a, const ForwardFusion& f, Stores stores);
  void (*runs_grad_sums_fused)(const float* dy, const float* x, int64_t count, int64_t len,
                               const float* center, const BackwardFusion& f, GradSums* out);
  void (*rows_grad_sums_fused)(const float* dy, const float* x, int64_t rows, int64_t width,
                               int64_t stride, const float* center, double* sum_dy,
                               double* sum_dy_xc, float* scratch, const BackwardFusion& f);
  void (*runs_dx_fused)(const float* dy, const float* x, float* dx, int64_t count, int64_t len,
                        const DxCoeffs* k, const BackwardFusion& f, Stores stores);
  void (*rows_dx_fused)(const float* dy, const float* x, float* dx, int64_t rows, int64_t width,
                        int64_t stride, const RowsDxCoeffs& k, const BackwardFusion& f, Stores stores);
};

// One table per ISA, each defined in its own translation unit compiled with its own flags.
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
