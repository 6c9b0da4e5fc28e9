#include "batchnorm_ops.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

#include "chan_merge.h"

namespace bn {
namespace {

int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// ---------------------------------------------------------------------------------------------
// Per-channel math, in double.

struct ChunkMoments {
  int64_t n;
  Moments m;
};

// Parallel-variance rule, in a fixed order over the chunks:
//   mean = sum(n_k * mean_k) / n;   M2 = sum(M2_k + n_k * (mean_k - mean)^2).
template <class At>
Moments merge_moments(int64_t chunks, At&& at) {
  if (chunks == 1) return at(0).m;
  double n = 0.0, weighted = 0.0;
  for (int64_t k = 0; k < chunks; ++k) {
    const ChunkMoments p = at(k);
    n += static_cast<double>(p.n);
    weighted += static_cast<double>(p.n) * p.m.mean;
  }
  const double mean = weighted / n;
  double m2 = 0.0;
  for (int64_t k = 0; k < chunks; ++k) {
    const ChunkMoments p = at(k);
    const double d = p.m.mean - mean;
    m2 += p.m.m2 + static_cast<double>(p.n) * d * d;
  }
  return {mean, m2};
}

float gamma_at(const float* gamma, int64_t c) { return gamma ? gamma[c] : 1.0f; }
float beta_at(const float* beta, int64_t c) { return beta ? beta[c] : 0.0f; }

// The count M of values per channel that an op's statistics divide by, with its reciprocal
// and the unbiased variance's factor M / (M - 1), made once per op rather than divided by per
// channel: on [4, 1024], a loop of forwardTrain + backward spent 30% of its time in the two
// per-channel finishing functions with the divisions and 23% without (perf samples; those
// functions' own samples fell by 43%).
struct ChannelCount {
  double inv_n, bessel;
  explicit ChannelCount(int64_t count)
      : inv_n(1.0 / static_cast<double>(count)),
        bessel(static_cast<double>(count) / (static_cast<double>(count) - 1.0)) {}
};

// Writes the channel's saved and running statistics; returns its normalisation.
//   var = M2 / M;  invStd = 1 / sqrt(var + eps);  running = (1 - momentum) running + momentum batch
Affine finish_train_channel(const TrainArgs& a, int64_t c, Moments m, const ChannelCount& count) {
  const double var = m.m2 * count.inv_n;
  const double inv_std = 1.0 / std::sqrt(var + a.eps);
  a.save_mean[c] = static_cast<float>(m.mean);
  a.save_inv_std[c] = static_cast<float>(inv_std);
  if (a.running_mean)
    a.running_mean[c] =
        static_cast<float>((1.0 - a.momentum) * a.running_mean[c] + a.momentum * m.mean);
  if (a.running_var) {
    const double batch_var = a.unbiased ? var * count.bessel : var;
    a.running_var[c] =
        static_cast<float>((1.0 - a.momentum) * a.running_var[c] + a.momentum * batch_var);
  }
  // y = (x - center) * scale + (beta - (mean - center) * scale): the part of the double mean
  // that the float center misses is folded into the shift (see Affine).
  const float center = static_cast<float>(m.mean);
  const double scale = gamma_at(a.gamma, c) * inv_std;
  return {center, static_cast<float>(scale),
          static_cast<float>(beta_at(a.beta, c) - (m.mean - center) * scale)};
}

// Synchronized (a.sync): hands this batch's moments `own` of channel c, over `per_channel`
// values, to the other replicas.
void publish_moments(const TrainArgs& a, int64_t c, Moments own, int64_t per_channel) {
  a.sync->exchange.publish(c, {static_cast<double>(per_channel), own.mean, own.m2});
}

// finish_train_channel with channel c's moments over every replica: the published moments of
// all, merged in rank order. On failure (the exchange, or too few values in all) nothing is
// written and the apply pass is skipped.
Affine finish_train_gathered(const TrainArgs& a, int64_t c) {
  ChanMerge all;
  if (!a.sync->exchange.gather(c, [&](int, const double* v) { all.add(v[0], v[1], v[2]); }))
    return {};
  // The counts come from shared memory that JavaScript can write: one that is not a count of
  // values (up to 2^53) is refused as too few, never cast.
  const bool counted = all.n >= 0.0 && all.n <= 9007199254740992.0;
  const int64_t count = counted ? static_cast<int64_t>(all.n) : 0;
  a.sync->total_count.store(count, std::memory_order_relaxed);  // the same on every channel
  if (count < 2) {
    a.sync->too_few = true;
    return {};
  }
  return finish_train_channel(a, c, Moments{all.mean, all.m2}, ChannelCount(count));
}

// finish_train_channel with the given (merged) moments instead of x's own.
Affine finish_train_given(const TrainArgs& a, int64_t c, const ChannelCount& count) {
  return finish_train_channel(a, c, Moments{a.given.mean[c], a.given.m2[c]}, count);
}

// The count a training forward's statistics divide by: x's values per channel, or the given
// moments' count.
ChannelCount train_count(const TrainArgs& a, const Geometry& g) {
  return ChannelCount(a.given.mean ? a.given.count : g.per_channel());
}

Affine inference_channel(const InferenceArgs& a, int64_t c) {
  const double inv_std = 1.0 / std::sqrt(static_cast<double>(a.running_var[c]) + a.eps);
  return {a.running_mean[c], static_cast<float>(gamma_at(a.gamma, c) * inv_std),
          beta_at(a.beta, c)};
}

// dgamma = sum(dy (x - mean)) invStd and dbeta = sum(dy), from this batch's own sums.
void write_param_grads(const BackwardArgs& a, int64_t c, GradSums own) {
  a.dbeta[c] = static_cast<float>(own.dy);
  a.dgamma[c] = static_cast<float>(own.dy_xc * static_cast<double>(a.save_inv_std[c]));
}

// Writes dgamma and dbeta from `own`; returns the channel's dx coefficients from `total`, the
// sums over `per_channel` values (own and total are the same sums unless synchronized). With
// xhat = (x - mean) invStd and dgamma_t = total.dy_xc invStd:
//   dx = g invStd dy - g invStd total.dy / M - g invStd^2 dgamma_t / M * (x - mean)
// and with global statistics (constants), dx = g invStd dy (center 0: x is not read).
DxCoeffs finish_backward_channel(const BackwardArgs& a, int64_t c, GradSums own, GradSums total,
                                 const ChannelCount& count) {
  write_param_grads(a, c, own);
  const double inv_std = a.save_inv_std[c];
  const double g_inv_std = gamma_at(a.gamma, c) * inv_std;
  const double dgamma = total.dy_xc * inv_std;
  if (a.use_global_stats) return {0.0f, static_cast<float>(g_inv_std), 0.0f, 0.0f};
  return {a.save_mean[c], static_cast<float>(g_inv_std),
          static_cast<float>(-g_inv_std * inv_std * dgamma * count.inv_n),
          static_cast<float>(-g_inv_std * total.dy * count.inv_n)};
}

// This batch's own sums of channel c as given (backward's `own`), when the reduce is skipped.
GradSums given_own(const BackwardArgs& a, int64_t c) { return {a.own.dy[c], a.own.dy_xc[c]}; }

GradSums add(GradSums a, GradSums b) { return {a.dy + b.dy, a.dy_xc + b.dy_xc}; }

// Synchronized (a.sync): hands this batch's sums of channel c to the other replicas.
void publish_sums(const BackwardArgs& a, int64_t c, GradSums own) {
  a.sync->exchange.publish(c, {own.dy, own.dy_xc, 0.0});
}

// finish_backward_channel with channel c's sums over every replica for dx, added in rank order
// as the collective's allReduceSum adds them, and this replica's own (as published) for dgamma
// and dbeta. On failure nothing is written.
DxCoeffs finish_backward_gathered(const BackwardArgs& a, int64_t c) {
  GradSums total{0.0, 0.0}, own{0.0, 0.0};
  const int me = a.sync->exchange.rank();
  const bool gathered = a.sync->exchange.gather(c, [&](int rank, const double* v) {
    const GradSums s{v[0], v[1]};
    total = rank == 0 ? s : add(total, s);
    if (rank == me) own = s;
  });
  return gathered ? finish_backward_channel(a, c, own, total, ChannelCount(a.total_count)) : DxCoeffs{};
}

// finish_backward_channel for the batch's own sums `own`, with the whole batch's sums in place
// of them for dx when they are given; `count` is backward_count's.
DxCoeffs finish_backward(const BackwardArgs& a, int64_t c, GradSums own, const ChannelCount& count) {
  if (!a.total.dy) return finish_backward_channel(a, c, own, own, count);
  return finish_backward_channel(a, c, own, GradSums{a.total.dy[c], a.total.dy_xc[c]}, count);
}

// The count dx's coefficients divide by: the whole batch's when its sums are given, else x's
// values per channel.
ChannelCount backward_count(const BackwardArgs& a, const Geometry& g) {
  return ChannelCount(a.total.dy ? a.total_count : g.per_channel());
}

// ---------------------------------------------------------------------------------------------
// Fusion (SPEC section 7). An op's residual, ReLU and mask, for kernel calls that start at any
// element `offset` of the tensor (mask bits are addressed by element index).

struct ForwardEpilogue {
  const float* residual;
  bool relu;
  uint8_t* mask;

  bool fused() const { return residual || relu; }
  ForwardFusion at(int64_t offset) const {
    return {residual ? residual + offset : nullptr, relu, mask, offset};
  }
};

ForwardEpilogue epilogue_of(const TrainArgs& a) { return {a.residual, a.relu, a.relu_mask}; }
ForwardEpilogue epilogue_of(const InferenceArgs& a) { return {a.residual, a.relu, nullptr}; }

struct BackwardPrologue {
  const uint8_t* mask;
  float* dresidual;

  bool fused() const { return mask || dresidual; }
  BackwardFusion at(int64_t offset) const {
    return {mask, offset, dresidual ? dresidual + offset : nullptr};
  }
};

// y = affine(x) and the epilogue, on `count` runs of `len` floats from element `offset`.
void affine_runs(const KernelTable& k, const ForwardEpilogue& e, const float* x, float* y,
                 int64_t offset, int64_t count, int64_t len, const Affine* a, Stores stores) {
  if (e.fused())
    k.runs_affine_fused(x + offset, y + offset, count, len, a, e.at(offset), stores);
  else
    k.runs_affine(x + offset, y + offset, count, len, a, stores);
}

// Bits past the last element are 0 (SPEC section 7); no kernel owns them.
void clear_mask_padding(uint8_t* mask, int64_t size) {
  if (size % 8 != 0) mask[size / 8] &= static_cast<uint8_t>((1u << (size % 8)) - 1);
}

// Makes this thread's streaming stores visible before whatever it does next (they are weakly
// ordered): each thread calls it once after its last kernel call of an op's elementwise pass,
// before the barrier that ends the op. Not per kernel call: a fence waits until the stores have
// left the core, and after every 12 KB run of an NCHW channel that cost forwardTrain ~20%.
void fence_streams(Stores stores) {
#if defined(__x86_64__) || defined(_M_X64)
  if (stores == Stores::kStreaming) _mm_sfence();
#else
  (void)stores;  // only the x86 kernels stream
#endif
}

// Streaming stores once the distinct arrays an op touches (null: absent) outgrow e.streaming_bytes: its
// output could not stay in cache for the caller anyway, and ordinary stores would first read
// every destination line and evict the inputs that a later pass (or call) re-reads.
Stores stores_for(const Execution& e, const Geometry& g, std::initializer_list<const float*> arrays) {
  int distinct = 0;
  for (auto a = arrays.begin(); a != arrays.end(); ++a)
    distinct += *a != nullptr && std::find(arrays.begin(), a, *a) == a;
  const double bytes = static_cast<double>(g.size()) * sizeof(float) * distinct;
  return bytes > static_cast<double>(e.streaming_bytes) ? Stores::kStreaming : Stores::kCached;
}

// ---------------------------------------------------------------------------------------------
// Runs layout. An op supplies:
//   reduces()                                      whether it runs the reduce phase
//   reduce(offset, c0, count, len, Partial* out)  partials of `count` consecutive runs
//   publish(c, const Partial* p, stride)           synchronized ops: hands channel c's numbers
//                                                  from p[k * stride] to the other replicas
//   finish(c, const Partial* p, stride)            closes channel c from p[k * stride], k < K
//                                                  (p is null when the op does not reduce), or
//                                                  from every replica's numbers when synchronized
//   kApplies, apply(offset, c0, count, len)        the elementwise pass on consecutive runs
// where runs start at element `offset` and belong to channels c0, c0 + 1, ...

bool channels_share_out(int threads, int64_t channels) {
  return threads == 1 || channels % threads == 0 || channels >= 8 * threads;
}

// Calls fn(offset, c0, count, len, k) for task t of the memory-order schedule: one outer
// slice's block of whole runs, or (for long runs) one piece of one run.
template <class Fn>
void runs_task(const RunsPlan& plan, int64_t t, Fn&& fn) {
  const Geometry& g = plan.g;
  if (plan.pieces == 1) {
    const int64_t blocks = plan.channel_blocks();
    const int64_t o = t / blocks, c0 = (t % blocks) * plan.channels_per_task;
    fn((o * g.channels + c0) * g.inner, c0, min_of(plan.channels_per_task, g.channels - c0),
       g.inner, o);
  } else {
    const int64_t c = t / plan.chunks, k = t % plan.chunks;
    const RunsPlan::Piece p = plan.piece(c, k);
    fn(p.offset, c, int64_t{1}, p.len, k);
  }
}

template <class Partial, class Op>
void run_runs(const RunsPlan& plan, int threads, Op& op) {
  const int64_t C = plan.g.channels, K = plan.chunks;
  const bool reduces = op.reduces();
  if constexpr (Op::kApplies) {
    if (reduces && plan.g.inner >= kSlabRun && channels_share_out(threads, C)) {
      // Channel by channel: the apply pass finds the channel's slab still in cache.
      std::vector<Partial> scratch(static_cast<size_t>(threads) * K);
#pragma omp parallel num_threads(threads) if (threads > 1)
      {
#pragma omp for schedule(static) nowait
        for (int64_t c = 0; c < C; ++c) {
          Partial* partials = scratch.data() + thread_index() * K;
          for (int64_t k = 0; k < K; ++k) {
            const RunsPlan::Piece p = plan.piece(c, k);
            op.reduce(p.offset, c, 1, p.len, partials + k);
          }
          op.publish(c, partials, 1);
          op.finish(c, partials, 1);
          for (int64_t k = 0; k < K; ++k) {
            const RunsPlan::Piece p = plan.piece(c, k);
            op.apply(p.offset, c, 1, p.len);
          }
        }
        fence_streams(op.stores);
      }
      return;
    }
  }
  // Phase by phase, walking memory in order. Partial k of channel c lives at k * C + c.
  std::vector<Partial> partials(reduces ? K * C : 0);
  const int64_t tasks = plan.tasks();
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    if (reduces) {
#pragma omp for schedule(static)
      for (int64_t t = 0; t < tasks; ++t)
        runs_task(plan, t, [&](int64_t offset, int64_t c0, int64_t count, int64_t len, int64_t k) {
          op.reduce(offset, c0, count, len, partials.data() + k * C + c0);
        });
    }
    if (reduces) {
      // A thread publishes all its channels before it waits for the first: the replicas'
      // rounds overlap.
#pragma omp for schedule(static) nowait
      for (int64_t c = 0; c < C; ++c) op.publish(c, partials.data() + c, C);
    }
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; ++c) op.finish(c, reduces ? partials.data() + c : nullptr, C);
    if constexpr (Op::kApplies) {
#pragma omp for schedule(static) nowait
      for (int64_t t = 0; t < tasks; ++t)
        runs_task(plan, t, [&](int64_t offset, int64_t c0, int64_t count, int64_t len, int64_t) {
          op.apply(offset, c0, count, len);
        });
      fence_streams(op.stores);
    }
  }
}

// The reduce side of forward_train and batch_moments: moments of each chunk of x, merged per
// channel.
struct MomentsRunsReduce {
  const KernelTable& k;
  const float* x;
  const RunsPlan& plan;

  void reduce(int64_t offset, int64_t, int64_t count, int64_t len, Moments* out) const {
    k.runs_moments(x + offset, count, len, out);
  }
  void publish(int64_t, const Moments*, int64_t) const {}  // ops that synchronize hide this
  Moments merged(int64_t c, const Moments* p, int64_t stride) const {
    return merge_moments(plan.chunks, [&](int64_t i) {
      return ChunkMoments{plan.piece(c, i).len, p[i * stride]};
    });
  }
};

struct TrainRuns : MomentsRunsReduce {
  static constexpr bool kApplies = true;
  const TrainArgs& a;
  Stores stores;
  std::vector<Affine> affine;
  const ChannelCount count;

  TrainRuns(const KernelTable& kt, const TrainArgs& args, const RunsPlan& p, Stores s)
      : MomentsRunsReduce{kt, args.x, p}, a(args), stores(s), affine(p.g.channels),
        count(train_count(args, p.g)) {}

  bool reduces() const { return a.given.mean == nullptr; }  // always when synchronized
  void publish(int64_t c, const Moments* p, int64_t stride) const {
    if (a.sync) publish_moments(a, c, merged(c, p, stride), plan.g.per_channel());
  }
  void finish(int64_t c, const Moments* p, int64_t stride) {
    affine[c] = a.sync      ? finish_train_gathered(a, c)
                : reduces() ? finish_train_channel(a, c, merged(c, p, stride), count)
                            : finish_train_given(a, c, count);
  }
  void apply(int64_t offset, int64_t c0, int64_t count, int64_t len) {
    if (a.sync && a.sync->failed()) return;
    affine_runs(k, epilogue_of(a), a.x, a.y, offset, count, len, affine.data() + c0, stores);
  }
};

struct MomentsRuns : MomentsRunsReduce {
  static constexpr bool kApplies = false;
  const MomentsArgs& a;

  MomentsRuns(const KernelTable& kt, const MomentsArgs& args, const RunsPlan& p)
      : MomentsRunsReduce{kt, args.x, p}, a(args) {}

  bool reduces() const { return true; }
  void finish(int64_t c, const Moments* p, int64_t stride) {
    const Moments m = merged(c, p, stride);
    a.mean[c] = m.mean;
    a.m2[c] = m.m2;
  }
};

// The reduce side of backward and backward_sums: sum(g) and sum(g (x - mean)) of each chunk,
// added up per channel, where g = dy, or with a ReLU mask g = mask bit ? dy : 0.
struct GradRunsReduce {
  const KernelTable& k;
  const float *dy, *x, *save_mean;
  const uint8_t* relu_mask;
  const RunsPlan& plan;

  void reduce(int64_t offset, int64_t c0, int64_t count, int64_t len, GradSums* out) const {
    if (relu_mask)
      k.runs_grad_sums_fused(dy + offset, x + offset, count, len, save_mean + c0,
                             BackwardFusion{relu_mask, offset, nullptr}, out);
    else
      k.runs_grad_sums(dy + offset, x + offset, count, len, save_mean + c0, out);
  }
  GradSums summed(const GradSums* p, int64_t stride) const {
    GradSums s{0.0, 0.0};
    for (int64_t i = 0; i < plan.chunks; ++i) s = add(s, p[i * stride]);
    return s;
  }
  void publish(int64_t, const GradSums*, int64_t) const {}  // ops that synchronize hide this
};

struct BackwardRuns : GradRunsReduce {
  static constexpr bool kApplies = true;
  const BackwardArgs& a;
  Stores stores;
  std::vector<DxCoeffs> coeffs;
  const ChannelCount count;

  BackwardRuns(const KernelTable& kt, const BackwardArgs& args, const RunsPlan& p, Stores s)
      : GradRunsReduce{kt, args.dy, args.x, args.save_mean, args.relu_mask, p}, a(args),
        stores(s), coeffs(p.g.channels), count(backward_count(args, p.g)) {}

  bool reduces() const { return a.own.dy == nullptr; }  // always when synchronized
  void publish(int64_t c, const GradSums* p, int64_t stride) const {
    if (a.sync) publish_sums(a, c, summed(p, stride));
  }
  void finish(int64_t c, const GradSums* p, int64_t stride) {
    coeffs[c] = a.sync ? finish_backward_gathered(a, c)
                       : finish_backward(a, c, reduces() ? summed(p, stride) : given_own(a, c), count);
  }
  void apply(int64_t offset, int64_t c0, int64_t count, int64_t len) {
    if (a.sync && a.sync->failed()) return;
    const BackwardPrologue p{a.relu_mask, a.dresidual};
    if (p.fused()) {  // x = null: constant statistics, dx = g * k_dy
      k.runs_dx_fused(a.dy + offset, a.use_global_stats ? nullptr : a.x + offset, a.dx + offset,
                      count, len, coeffs.data() + c0, p.at(offset), stores);
      return;
    }
    if (!a.use_global_stats) {
      k.runs_dx(a.dy + offset, a.x + offset, a.dx + offset, count, len, coeffs.data() + c0,
                stores);
      return;
    }
    // dx = dy * k_dy: the affine kernel on dy, which never reads x.
    Affine scale[64];
    for (int64_t done = 0; done < count; done += 64) {
      const int64_t n = min_of(64, count - done);
      for (int64_t r = 0; r < n; ++r) scale[r] = {0.0f, coeffs[c0 + done + r].k_dy, 0.0f};
      k.runs_affine(a.dy + offset + done * len, a.dx + offset + done * len, n, len, scale,
                    stores);
    }
  }
};

struct SumsRuns : GradRunsReduce {
  static constexpr bool kApplies = false;
  const GradSumsArgs& a;

  SumsRuns(const KernelTable& kt, const GradSumsArgs& args, const RunsPlan& p)
      : GradRunsReduce{kt, args.dy, args.x, args.save_mean, args.relu_mask, p}, a(args) {}

  bool reduces() const { return true; }
  void finish(int64_t c, const GradSums* p, int64_t stride) {
    const GradSums s = summed(p, stride);
    a.sum_dy[c] = s.dy;
    a.sum_dy_xc[c] = s.dy_xc;
  }
};

void inference_runs(const KernelTable& k, int threads, const RunsPlan& plan,
                    const InferenceArgs& a, Stores stores) {
  std::vector<Affine> affine(plan.g.channels);
  for (int64_t c = 0; c < plan.g.channels; ++c) affine[c] = inference_channel(a, c);
  const int64_t tasks = plan.tasks();
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
#pragma omp for schedule(static) nowait
    for (int64_t t = 0; t < tasks; ++t)
      runs_task(plan, t, [&](int64_t offset, int64_t c0, int64_t count, int64_t len, int64_t) {
        affine_runs(k, epilogue_of(a), a.x, a.y, offset, count, len, affine.data() + c0, stores);
      });
    fence_streams(stores);
  }
}

// ---------------------------------------------------------------------------------------------
// Rows layout. Column j belongs to channel j / inner; per-column coefficient arrays repeat a
// channel's value `inner` times. Partials of row chunk rk live at rk * W + j.

// Per-column float arrays for the elementwise passes: per field, the W columns' values
// repeated plan.fold times (see RowsPlan).
struct ColumnArrays {
  std::vector<float> data;
  int64_t width, copies;
  ColumnArrays(int fields, const RowsPlan& p)
      : data(fields * p.fold * p.width), width(p.width), copies(p.fold) {}
  float* field(int i) { return data.data() + i * copies * width; }
  // Sets columns [first, first + count) of every copy.
  void set(int i, int64_t first, int64_t count, float value) {
    for (int64_t r = 0; r < copies; ++r)
      for (int64_t j = first; j < first + count; ++j) field(i)[r * width + j] = value;
  }
};

// Calls pass(offset, rows, columns, stride, first_column) for one task of an elementwise pass:
// whole folds of rows as long rows, then the rows left over as they are.
template <class Pass>
void for_folded_rows(const RowsPlan& plan, const RowsPlan::Task& t, Pass&& pass) {
  const int64_t folded = t.rows / plan.fold, long_width = plan.fold * plan.width;
  const int64_t at = plan.offset(t), rest = t.rows - folded * plan.fold;
  if (plan.fold == 1) return pass(at, t.rows, t.columns, plan.width, t.first_column);
  if (folded > 0) pass(at, folded, long_width, long_width, int64_t{0});
  if (rest > 0) pass(at + folded * long_width, rest, plan.width, plan.width, int64_t{0});
}

// Per-column Affine coefficients: each channel's value repeated over its `inner` columns.
struct AffineColumns {
  ColumnArrays arrays;
  int64_t inner;
  explicit AffineColumns(const RowsPlan& p) : arrays(3, p), inner(p.g.inner) {}

  void set(int64_t c, const Affine& f) {
    arrays.set(0, c * inner, inner, f.center);
    arrays.set(1, c * inner, inner, f.scale);
    arrays.set(2, c * inner, inner, f.shift);
  }
  // y = affine(x) and the epilogue over one task.
  void apply(const KernelTable& k, const RowsPlan& plan, const RowsPlan::Task& t, const float* x,
             float* y, const ForwardEpilogue& e, Stores stores) {
    for_folded_rows(plan, t, [&](int64_t at, int64_t rows, int64_t columns, int64_t stride, int64_t j) {
      const RowsAffine a{arrays.field(0) + j, arrays.field(1) + j, arrays.field(2) + j};
      if (e.fused())
        k.rows_affine_fused(x + at, y + at, rows, columns, stride, a, e.at(at), stores);
      else
        k.rows_affine(x + at, y + at, rows, columns, stride, a, stores);
    });
  }
};

// Columns per parallel step of the column merge (rounded to whole channels).
constexpr int64_t kMergeColumns = 512;

// Runs reduce(task, scratch), then merge(j0, j1) with finish(c) of the channels of those
// columns, then apply(task), as parallel phases; each thread gets its own kernel scratch. merge
// folds the row chunks' partials of columns [j0, j1) together, loops over columns that
// vectorise; finish then only combines a channel's `inner` columns (a per-channel walk over row
// chunks would be a chain of strided scalar loads). Steps of whole channels let one phase do
// both: every barrier costs a wake-up of the waiting threads, which on small tensors is a
// good part of the call. As in the runs layout, an op may skip the reduce and merge
// (reduces()) or have no apply phase (kApplies).
template <class Op>
void run_rows(const RowsPlan& plan, int threads, Op& op) {
  const int64_t tasks = plan.tasks(), W = plan.width, inner = plan.g.inner;
  const bool reduces = op.reduces();
  const int64_t per_thread = reduces ? kRowsScratch * plan.block_width : 0;
  const int64_t step = inner * (kMergeColumns / inner > 0 ? kMergeColumns / inner : 1);
  std::vector<float> scratch(static_cast<size_t>(threads) * per_thread);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    if (reduces) {
#pragma omp for schedule(static)
      for (int64_t t = 0; t < tasks; ++t)
        op.reduce(plan.task(t), scratch.data() + thread_index() * per_thread);
    }
#pragma omp for schedule(static)
    for (int64_t j = 0; j < W; j += step) {
      const int64_t end = min_of(W, j + step);
      if (reduces) op.merge(j, end);
      // Synchronized ops publish the step's channels before they wait for the first.
      for (int64_t c = j / inner; c < end / inner; ++c) op.publish(c);
      for (int64_t c = j / inner; c < end / inner; ++c) op.finish(c);
    }
    if constexpr (Op::kApplies) {
#pragma omp for schedule(static) nowait
      for (int64_t t = 0; t < tasks; ++t) op.apply(plan.task(t));
      fence_streams(op.stores);
    }
  }
}

// The reduce side of forward_train and batch_moments on rows: per row chunk and column, then
// per column, then per channel. Holds no partials when it will not reduce.
struct MomentsRowsReduce {
  const KernelTable& k;
  const float* x;
  const RowsPlan& plan;
  std::vector<double> mean, m2;                 // per row chunk and column
  std::vector<double> column_mean, column_m2;  // per column, all rows

  MomentsRowsReduce(const KernelTable& kt, const float* data, const RowsPlan& p, bool reduces)
      : k(kt), x(data), plan(p), mean(reduces ? p.row_chunks * p.width : 0),
        m2(mean.size()), column_mean(reduces ? p.width : 0), column_m2(column_mean.size()) {}

  void reduce(const RowsPlan::Task& t, float* scratch) {
    const int64_t partial = plan.partial(t);
    k.rows_moments(x + plan.offset(t), t.rows, t.columns, plan.width, mean.data() + partial,
                   m2.data() + partial, scratch);
  }
  // merge_moments over the row chunks, for many columns at once.
  void merge(int64_t j0, int64_t j1) {
    const int64_t W = plan.width;
    double* const mu = column_mean.data();
    double* const m2_all = column_m2.data();
    for (int64_t j = j0; j < j1; ++j) mu[j] = m2_all[j] = 0.0;
    for (int64_t rk = 0; rk < plan.row_chunks; ++rk) {
      const double n_k = static_cast<double>(plan.rows_in(rk));
      const double* mean_k = mean.data() + rk * W;
      for (int64_t j = j0; j < j1; ++j) mu[j] += n_k * mean_k[j];
    }
    const double n = static_cast<double>(plan.g.outer);
    for (int64_t j = j0; j < j1; ++j) mu[j] /= n;
    for (int64_t rk = 0; rk < plan.row_chunks; ++rk) {
      const double n_k = static_cast<double>(plan.rows_in(rk));
      const double* mean_k = mean.data() + rk * W;
      const double* m2_k = m2.data() + rk * W;
      for (int64_t j = j0; j < j1; ++j) {
        const double d = mean_k[j] - mu[j];
        m2_all[j] += m2_k[j] + n_k * d * d;
      }
    }
  }
  // Channel c's moments: its `inner` columns merged.
  Moments merged(int64_t c) const {
    const int64_t inner = plan.g.inner, first = c * inner;
    return merge_moments(inner, [&](int64_t i) {
      return ChunkMoments{plan.g.outer, Moments{column_mean[first + i], column_m2[first + i]}};
    });
  }
  void publish(int64_t) const {}  // ops that synchronize hide this
};

struct TrainRows : MomentsRowsReduce {
  static constexpr bool kApplies = true;
  const TrainArgs& a;
  Stores stores;
  AffineColumns affine;
  const ChannelCount count;

  TrainRows(const KernelTable& kt, const TrainArgs& args, const RowsPlan& p, Stores s)
      : MomentsRowsReduce(kt, args.x, p, args.given.mean == nullptr), a(args), stores(s),
        affine(p), count(train_count(args, p.g)) {}

  bool reduces() const { return a.given.mean == nullptr; }  // always when synchronized
  void publish(int64_t c) const {
    if (a.sync) publish_moments(a, c, merged(c), plan.g.per_channel());
  }
  void finish(int64_t c) {
    affine.set(c, a.sync      ? finish_train_gathered(a, c)
                  : reduces() ? finish_train_channel(a, c, merged(c), count)
                              : finish_train_given(a, c, count));
  }
  void apply(const RowsPlan::Task& t) {
    if (a.sync && a.sync->failed()) return;
    affine.apply(k, plan, t, a.x, a.y, epilogue_of(a), stores);
  }
};

struct MomentsRows : MomentsRowsReduce {
  static constexpr bool kApplies = false;
  const MomentsArgs& a;

  MomentsRows(const KernelTable& kt, const MomentsArgs& args, const RowsPlan& p)
      : MomentsRowsReduce(kt, args.x, p, true), a(args) {}

  bool reduces() const { return true; }
  void finish(int64_t c) {
    const Moments m = merged(c);
    a.mean[c] = m.mean;
    a.m2[c] = m.m2;
  }
};

struct InferenceRows {
  static constexpr bool kApplies = true;
  const KernelTable& k;
  const InferenceArgs& a;
  const RowsPlan& plan;
  Stores stores;
  AffineColumns affine;

  InferenceRows(const KernelTable& kt, const InferenceArgs& args, const RowsPlan& p, Stores s)
      : k(kt), a(args), plan(p), stores(s), affine(p) {}

  bool reduces() const { return false; }
  void reduce(const RowsPlan::Task&, float*) {}
  void merge(int64_t, int64_t) {}
  void publish(int64_t) const {}
  void finish(int64_t c) { affine.set(c, inference_channel(a, c)); }
  void apply(const RowsPlan::Task& t) { affine.apply(k, plan, t, a.x, a.y, epilogue_of(a), stores); }
};

// The reduce side of backward and backward_sums on rows: sums per row chunk and column, added
// into row chunk 0's, then per channel. Holds no partials when it will not reduce.
struct GradRowsReduce {
  const KernelTable& k;
  const float *dy, *x;
  const uint8_t* relu_mask;  // null: g = dy
  const RowsPlan& plan;
  std::vector<float> center;  // per column: its channel's saved mean, what the sums centre on
  std::vector<double> sum_dy, sum_dy_xc;

  GradRowsReduce(const KernelTable& kt, const float* grad, const float* data,
                 const float* save_mean, const uint8_t* mask, const RowsPlan& p, bool reduces)
      : k(kt), dy(grad), x(data), relu_mask(mask), plan(p), center(reduces ? p.width : 0),
        sum_dy(reduces ? p.row_chunks * p.width : 0), sum_dy_xc(sum_dy.size()) {
    for (size_t j = 0; j < center.size(); ++j) center[j] = save_mean[j / p.g.inner];
  }

  void reduce(const RowsPlan::Task& t, float* scratch) {
    const int64_t at = plan.offset(t), partial = plan.partial(t);
    const float* c = center.data() + t.first_column;
    if (relu_mask)
      k.rows_grad_sums_fused(dy + at, x + at, t.rows, t.columns, plan.width, c,
                             sum_dy.data() + partial, sum_dy_xc.data() + partial, scratch,
                             BackwardFusion{relu_mask, at, nullptr});
    else
      k.rows_grad_sums(dy + at, x + at, t.rows, t.columns, plan.width, c,
                       sum_dy.data() + partial, sum_dy_xc.data() + partial, scratch);
  }
  // Sums the row chunks' partials into row chunk 0's, for many columns at once.
  void merge(int64_t j0, int64_t j1) {
    const int64_t W = plan.width;
    for (int64_t rk = 1; rk < plan.row_chunks; ++rk)
      for (int64_t j = j0; j < j1; ++j) {
        sum_dy[j] += sum_dy[rk * W + j];
        sum_dy_xc[j] += sum_dy_xc[rk * W + j];
      }
  }
  // Channel c's sums: its `inner` columns added.
  GradSums summed(int64_t c) const {
    const int64_t inner = plan.g.inner, first = c * inner;
    GradSums s{0.0, 0.0};
    for (int64_t j = first; j < first + inner; ++j) s = add(s, GradSums{sum_dy[j], sum_dy_xc[j]});
    return s;
  }
  void publish(int64_t) const {}  // ops that synchronize hide this
};

struct BackwardRows : GradRowsReduce {
  static constexpr bool kApplies = true;
  const BackwardArgs& a;
  Stores stores;
  ColumnArrays coeff;  // center, k_dy, k_xc, k_const
  const ChannelCount count;

  BackwardRows(const KernelTable& kt, const BackwardArgs& args, const RowsPlan& p, Stores s)
      : GradRowsReduce(kt, args.dy, args.x, args.save_mean, args.relu_mask, p,
                       args.own.dy == nullptr),
        a(args), stores(s), coeff(4, p), count(backward_count(args, p.g)) {}

  bool reduces() const { return a.own.dy == nullptr; }  // always when synchronized
  void publish(int64_t c) const {
    if (a.sync) publish_sums(a, c, summed(c));
  }
  void finish(int64_t c) {
    const int64_t inner = plan.g.inner, first = c * inner;
    const DxCoeffs q =
        a.sync ? finish_backward_gathered(a, c)
               : finish_backward(a, c, reduces() ? summed(c) : given_own(a, c), count);
    coeff.set(0, first, inner, q.center);
    coeff.set(1, first, inner, q.k_dy);
    coeff.set(2, first, inner, q.k_xc);
    coeff.set(3, first, inner, q.k_const);
  }
  void apply(const RowsPlan::Task& t) {
    if (a.sync && a.sync->failed()) return;
    for_folded_rows(plan, t, [&](int64_t at, int64_t rows, int64_t columns, int64_t stride, int64_t j) {
      float* const f[4] = {coeff.field(0) + j, coeff.field(1) + j, coeff.field(2) + j,
                           coeff.field(3) + j};
      const BackwardPrologue p{a.relu_mask, a.dresidual};
      if (p.fused())  // x = null: constant statistics, dx = g * k_dy
        k.rows_dx_fused(a.dy + at, a.use_global_stats ? nullptr : a.x + at, a.dx + at, rows,
                        columns, stride, RowsDxCoeffs{f[0], f[1], f[2], f[3]}, p.at(at), stores);
      else if (a.use_global_stats)  // dx = dy * k_dy; center and k_const are 0 here
        k.rows_affine(a.dy + at, a.dx + at, rows, columns, stride, RowsAffine{f[0], f[1], f[3]},
                      stores);
      else
        k.rows_dx(a.dy + at, a.x + at, a.dx + at, rows, columns, stride,
                  RowsDxCoeffs{f[0], f[1], f[2], f[3]}, stores);
    });
  }
};

struct SumsRows : GradRowsReduce {
  static constexpr bool kApplies = false;
  const GradSumsArgs& a;

  SumsRows(const KernelTable& kt, const GradSumsArgs& args, const RowsPlan& p)
      : GradRowsReduce(kt, args.dy, args.x, args.save_mean, args.relu_mask, p, true), a(args) {}

  bool reduces() const { return true; }
  void finish(int64_t c) {
    const GradSums s = summed(c);
    a.sum_dy[c] = s.dy;
    a.sum_dy_xc[c] = s.dy_xc;
  }
};

bool rows_layout(const Geometry& g) { return g.inner < kShortRun; }

// A reducing op on whichever layout the geometry calls for: RowsOp on the rows layout, RunsOp
// (with Partial results per chunk) on the runs layout; each built from (kernels, a, plan,
// extra...).
template <class RowsOp, class RunsOp, class Partial, class Args, class... Extra>
void run_layout(const Execution& e, Geometry g, const Args& a, Extra... extra) {
  const int threads = threads_for(g.size(), e.threads);
  if (rows_layout(g)) {
    const RowsPlan plan(g, threads);
    RowsOp op(*e.kernels, a, plan, extra...);
    run_rows(plan, threads, op);
  } else {
    const RunsPlan plan(g);
    RunsOp op(*e.kernels, a, plan, extra...);
    run_runs<Partial>(plan, threads, op);
  }
}

}  // namespace

namespace {

void forward_train_here(const Execution& e, Geometry g, const TrainArgs& a) {
  if (g.size() == 0) {  // no values here; given or shared moments still set the statistics
    if (a.sync) {  // the other replicas still need this one's (empty) moments
      for (int64_t c = 0; c < g.channels; ++c) publish_moments(a, c, Moments{0.0, 0.0}, 0);
      for (int64_t c = 0; c < g.channels; ++c) finish_train_gathered(a, c);
    } else if (a.given.mean) {
      const ChannelCount count = train_count(a, g);
      for (int64_t c = 0; c < g.channels; ++c) finish_train_given(a, c, count);
    }
    return;
  }
  if (a.relu_mask) clear_mask_padding(a.relu_mask, g.size());
  run_layout<TrainRows, TrainRuns, Moments>(e, g, a, stores_for(e, g, {a.x, a.y, a.residual}));
}

// A float array's copy that replaces the original only on commit().
class Tentative {
 public:
  Tentative(float* original, int64_t n)
      : original_(original), copy_(original, original ? original + n : original) {}
  float* data() { return original_ ? copy_.data() : nullptr; }
  void commit() { std::copy(copy_.begin(), copy_.end(), original_); }

 private:
  float* original_;
  std::vector<float> copy_;
};

}  // namespace

void forward_train(const Execution& e, Geometry g, const TrainArgs& a) {
  g = g.canonical();
  if (!a.sync) return forward_train_here(e, g, a);
  // Synchronized: a failed exchange (another replica's doing) leaves the running statistics.
  Tentative mean(a.running_mean, g.channels), var(a.running_var, g.channels);
  TrainArgs t = a;
  t.running_mean = mean.data();
  t.running_var = var.data();
  forward_train_here(e, g, t);
  if (a.sync->failed()) return;
  mean.commit();
  var.commit();
}

void forward_inference(const Execution& e, Geometry g, const InferenceArgs& a) {
  g = g.canonical();
  if (g.size() == 0) return;
  const int threads = threads_for(g.size(), e.threads);
  const Stores stores = stores_for(e, g, {a.x, a.y, a.residual});
  if (rows_layout(g)) {
    const RowsPlan plan(g, threads);
    InferenceRows op(*e.kernels, a, plan, stores);
    run_rows(plan, threads, op);
  } else {
    inference_runs(*e.kernels, threads, RunsPlan(g), a, stores);
  }
}

void backward(const Execution& e, Geometry g, const BackwardArgs& args) {
  g = g.canonical();
  if (g.size() == 0) {  // no values: this batch's gradients of gamma and beta are empty sums
    if (args.sync) {  // the other replicas still need this one's (zero) sums
      for (int64_t c = 0; c < g.channels; ++c) publish_sums(args, c, GradSums{0.0, 0.0});
      for (int64_t c = 0; c < g.channels; ++c) finish_backward_gathered(args, c);
    } else {
      for (int64_t c = 0; c < g.channels; ++c)
        write_param_grads(args, c, args.own.dy ? given_own(args, c) : GradSums{0.0, 0.0});
    }
    return;
  }
  BackwardArgs a = args;
  if (a.dresidual == a.dy && !a.relu_mask) a.dresidual = nullptr;  // g = dy is already there
  // With global statistics, x is never read.
  const Stores stores =
      stores_for(e, g, {a.dy, a.use_global_stats ? nullptr : a.x, a.dx, a.dresidual});
  run_layout<BackwardRows, BackwardRuns, GradSums>(e, g, a, stores);
}

void batch_moments(const Execution& e, Geometry g, const MomentsArgs& a) {
  g = g.canonical();
  if (g.size() == 0) {  // no values: count 0, and zero moments (SPEC section 8)
    for (int64_t c = 0; c < g.channels; ++c) a.mean[c] = a.m2[c] = 0.0;
    return;
  }
  run_layout<MomentsRows, MomentsRuns, Moments>(e, g, a);
}

void backward_sums(const Execution& e, Geometry g, const GradSumsArgs& a) {
  g = g.canonical();
  if (g.size() == 0) {
    for (int64_t c = 0; c < g.channels; ++c) a.sum_dy[c] = a.sum_dy_xc[c] = 0.0;
    return;
  }
  run_layout<SumsRows, SumsRuns, GradSums>(e, g, a);
}

}  // namespace bn
