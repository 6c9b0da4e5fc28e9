// The BatchNorm operations on raw pointers (SPEC sections 3 and 8). Callers have validated
// every length; these functions never allocate beyond their scratch, never throw except
// std::bad_alloc for that scratch, and write outputs only after all inputs were read.
//
// Every reducing op runs a reduce phase (per-chunk partials of one read of the data), a finish
// phase (per channel) and an elementwise apply phase. Synchronized statistics (SPEC section 8)
// run parts of that: batch_moments and backward_sums the reduce phase alone; forward_train with
// given moments, and backward with given sums, the finish and apply phases.
#pragma once
#include <atomic>

#include "channel_exchange.h"
#include "chunking.h"
#include "kernel_table.h"

namespace bn {

// Statistics synchronized inside the op (channel_exchange.h): each channel's moments (forward)
// or gradient sums (backward) are shared with the other replicas between the channel's reduce
// and its apply. What the op learns from them is left here for the caller.
struct Synchronized {
  ChannelExchange exchange;
  std::atomic<int64_t> total_count{-1};  // forward: values per channel over every replica
  std::atomic<bool> too_few{false};      // forward: fewer than 2 of them; nothing was written

  explicit Synchronized(const ExchangeMemory& m) : exchange(m) {}
  bool failed() const { return exchange.status() != ChannelExchange::kOk || too_few; }
};

// Per-channel moments from elsewhere (the merge of every replica's batch_moments).
struct GivenMoments {
  int64_t count;            // values per channel
  const double *mean, *m2;  // null: none given
};

// Per-channel gradient sums from elsewhere: sum(dy) and sum(dy * (x - save_mean)).
struct GivenSums {
  const double *dy, *dy_xc;  // null: none given
};

struct TrainArgs {
  const float* x;
  float* y;                          // may equal x
  const float *gamma, *beta;         // null: 1 and 0
  double eps, momentum;
  bool unbiased;                     // running variance takes var * M / (M - 1)
  float *running_mean, *running_var;  // null: not tracked
  float *save_mean, *save_inv_std;
  GivenMoments given;  // given: normalise with these instead of x's own (no reduce phase)
  // SPEC section 7: y = relu(pre) when `relu`, pre = affine (+ residual); relu_mask receives
  // y > 0 bit-packed, ceil(size / 8) bytes (given exactly when relu).
  const float* residual;  // null: none; y may equal it
  bool relu;
  uint8_t* relu_mask;
  // Null: this batch alone. Otherwise the batch is every replica's (x must reduce: no `given`),
  // and the running statistics change only if the whole op succeeds.
  Synchronized* sync;
};

// batch_moments: per-channel mean and M2 of x.
struct MomentsArgs {
  const float* x;
  double *mean, *m2;
};

struct InferenceArgs {
  const float* x;
  float* y;  // may equal x
  const float *gamma, *beta;
  double eps;
  const float *running_mean, *running_var;
  const float* residual;  // null: none; y may equal it
  bool relu;
};

struct BackwardArgs {
  const float *dy, *x;
  float* dx;  // may equal dy
  const float* gamma;
  const float *save_mean, *save_inv_std;
  bool use_global_stats;  // statistics were constants: dx = dy * gamma * invStd
  float *dgamma, *dbeta;
  // Synchronized backward: dx from the whole batch's sums over `total_count` values per
  // channel; dgamma and dbeta from this replica's own sums, which are reduced from dy and x
  // unless given in `own`. Without `total`, both are this batch's own.
  GivenSums total;
  int64_t total_count;
  GivenSums own;
  // SPEC section 7: with relu_mask, the gradient g = mask bit ? dy : 0 replaces dy (in the own
  // sums and in dx); dresidual (null: not wanted) receives g and may equal dy (then dx may not).
  const uint8_t* relu_mask;
  float* dresidual;
  // Null: not synchronized. Otherwise dx comes from every replica's sums over `total_count`
  // values per channel, shared channel by channel (no `total` or `own` given).
  Synchronized* sync;
};

// backward_sums: this batch's sum(g) and sum(g * (x - save_mean)) per channel, g = dy or, with a
// ReLU mask, the masked dy.
struct GradSumsArgs {
  const float *dy, *x;
  const float* save_mean;
  double *sum_dy, *sum_dy_xc;
  const uint8_t* relu_mask;  // SPEC section 7: the sums of g = mask bit ? dy : 0 (null: of dy)
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
void batch_moments(const Execution& e, Geometry g, const MomentsArgs& a);
void backward_sums(const Execution& e, Geometry g, const GradSumsArgs& a);

}  // namespace bn
