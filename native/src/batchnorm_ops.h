// The three BatchNorm operations on raw pointers (SPEC section 3). Callers have validated
// every length; these functions never allocate beyond their scratch, never throw except
// std::bad_alloc for that scratch, and write outputs only after all inputs were read.
#pragma once
#include "chunking.h"
#include "kernel_table.h"

namespace bn {

struct TrainArgs {
  const float* x;
  float* y;                          // may equal x
  const float *gamma, *beta;         // null: 1 and 0
  double eps, momentum;
  bool unbiased;                     // running variance takes var * M / (M - 1)
  float *running_mean, *running_var;  // null: not tracked
  float *save_mean, *save_inv_std;
};

struct InferenceArgs {
  const float* x;
  float* y;  // may equal x
  const float *gamma, *beta;
  double eps;
  const float *running_mean, *running_var;
};

struct BackwardArgs {
  const float *dy, *x;
  float* dx;  // may equal dy
  const float* gamma;
  const float *save_mean, *save_inv_std;
  bool use_global_stats;  // statistics were constants: dx = dy * gamma * invStd
  float *dgamma, *dbeta;
};

// How an op runs: its kernels, its thread count, and the size from which it writes its output
// with streaming stores (when the arrays it touches, in bytes, exceed `streaming_bytes`, they
// cannot stay in cache for the caller anyway; see Stores).
struct Execution {
  const KernelTable* kernels;
  int threads;
  int64_t streaming_bytes;
};

void forward_train(const Execution& e, Geometry g, const TrainArgs& a);
void forward_inference(const Execution& e, Geometry g, const InferenceArgs& a);
void backward(const Execution& e, Geometry g, const BackwardArgs& a);

}  // namespace bn
