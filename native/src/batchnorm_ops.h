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

void forward_train(const KernelTable& k, int threads, Geometry g, const TrainArgs& a);
void forward_inference(const KernelTable& k, int threads, Geometry g, const InferenceArgs& a);
void backward(const KernelTable& k, int threads, Geometry g, const BackwardArgs& a);

}  // namespace bn
