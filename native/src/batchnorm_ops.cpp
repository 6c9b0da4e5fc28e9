#include "batchnorm_ops.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

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

// Writes the channel's saved and running statistics; returns its normalisation.
//   var = M2 / M;  invStd = 1 / sqrt(var + eps);  running = (1 - momentum) running + momentum batch
Affine finish_train_channel(const TrainArgs& a, int64_t c, Moments m, int64_t per_channel) {
  const double n = static_cast<double>(per_channel);
  const double var = m.m2 / n;
  const double inv_std = 1.0 / std::sqrt(var + a.eps);
  a.save_mean[c] = static_cast<float>(m.mean);
  a.save_inv_std[c] = static_cast<float>(inv_std);
  if (a.running_mean)
    a.running_mean[c] =
        static_cast<float>((1.0 - a.momentum) * a.running_mean[c] + a.momentum * m.mean);
  if (a.running_var) {
    const double batch_var = a.unbiased ? var * n / (n - 1.0) : var;
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

Affine inference_channel(const InferenceArgs& a, int64_t c) {
  const double inv_std = 1.0 / std::sqrt(static_cast<double>(a.running_var[c]) + a.eps);
  return {a.running_mean[c], static_cast<float>(gamma_at(a.gamma, c) * inv_std),
          beta_at(a.beta, c)};
}

// Writes dgamma and dbeta; returns the channel's dx coefficients. With xhat = (x - mean) invStd:
//   dx = g invStd dy - g invStd dbeta / M - g invStd^2 dgamma / M * (x - mean)
// and with global statistics (constants), dx = g invStd dy (center 0: x is not read).
DxCoeffs finish_backward_channel(const BackwardArgs& a, int64_t c, GradSums s,
                                 int64_t per_channel) {
  const double n = static_cast<double>(per_channel);
  const double inv_std = a.save_inv_std[c];
  const double g_inv_std = gamma_at(a.gamma, c) * inv_std;
  const double dgamma = s.dy_xc * inv_std;
  a.dbeta[c] = static_cast<float>(s.dy);
  a.dgamma[c] = static_cast<float>(dgamma);
  if (a.use_global_stats) return {0.0f, static_cast<float>(g_inv_std), 0.0f, 0.0f};
  return {a.save_mean[c], static_cast<float>(g_inv_std),
          static_cast<float>(-g_inv_std * inv_std * dgamma / n),
          static_cast<float>(-g_inv_std * s.dy / n)};
}

GradSums add(GradSums a, GradSums b) { return {a.dy + b.dy, a.dy_xc + b.dy_xc}; }

// Streaming stores once the distinct arrays an op touches outgrow e.streaming_bytes: its
// output could not stay in cache for the caller anyway, and ordinary stores would first read
// every destination line and evict the inputs that a later pass (or call) re-reads.
Stores stores_for(const Execution& e, const Geometry& g, std::initializer_list<const float*> arrays) {
  int distinct = 0;
  for (auto a = arrays.begin(); a != arrays.end(); ++a)
    distinct += std::find(arrays.begin(), a, *a) == a;
  const double bytes = static_cast<double>(g.size()) * sizeof(float) * distinct;
  return bytes > static_cast<double>(e.streaming_bytes) ? Stores::kStreaming : Stores::kCached;
}

// ---------------------------------------------------------------------------------------------
// Runs layout. An op supplies:
//   reduce(offset, c0, count, len, Partial* out)  partials of `count` consecutive runs
//   finish(c, const Partial* p, stride)            closes channel c from p[k * stride], k < K
//   apply(offset, c0, count, len)                  the elementwise pass on consecutive runs
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
  if (plan.g.inner >= kSlabRun && channels_share_out(threads, C)) {
    // Channel by channel: the apply pass finds the channel's slab still in cache.
    std::vector<Partial> scratch(static_cast<size_t>(threads) * K);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < C; ++c) {
      Partial* partials = scratch.data() + thread_index() * K;
      for (int64_t k = 0; k < K; ++k) {
        const RunsPlan::Piece p = plan.piece(c, k);
        op.reduce(p.offset, c, 1, p.len, partials + k);
      }
      op.finish(c, partials, 1);
      for (int64_t k = 0; k < K; ++k) {
        const RunsPlan::Piece p = plan.piece(c, k);
        op.apply(p.offset, c, 1, p.len);
      }
    }
    return;
  }
  // Phase by phase, walking memory in order. Partial k of channel c lives at k * C + c.
  std::vector<Partial> partials(K * C);
  const int64_t tasks = plan.tasks();
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t)
      runs_task(plan, t, [&](int64_t offset, int64_t c0, int64_t count, int64_t len, int64_t k) {
        op.reduce(offset, c0, count, len, partials.data() + k * C + c0);
      });
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; ++c) op.finish(c, partials.data() + c, C);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t)
      runs_task(plan, t, [&](int64_t offset, int64_t c0, int64_t count, int64_t len, int64_t) {
        op.apply(offset, c0, count, len);
      });
  }
}

struct TrainRuns {
  const KernelTable& k;
  const TrainArgs& a;
  const RunsPlan& plan;
  Stores stores;
  std::vector<Affine> affine;

  void reduce(int64_t offset, int64_t, int64_t count, int64_t len, Moments* out) {
    k.runs_moments(a.x + offset, count, len, out);
  }
  void finish(int64_t c, const Moments* p, int64_t stride) {
    const Moments m = merge_moments(plan.chunks, [&](int64_t i) {
      return ChunkMoments{plan.piece(c, i).len, p[i * stride]};
    });
    affine[c] = finish_train_channel(a, c, m, plan.g.per_channel());
  }
  void apply(int64_t offset, int64_t c0, int64_t count, int64_t len) {
    k.runs_affine(a.x + offset, a.y + offset, count, len, affine.data() + c0, stores);
  }
};

struct BackwardRuns {
  const KernelTable& k;
  const BackwardArgs& a;
  const RunsPlan& plan;
  Stores stores;
  std::vector<DxCoeffs> coeffs;

  void reduce(int64_t offset, int64_t c0, int64_t count, int64_t len, GradSums* out) {
    k.runs_grad_sums(a.dy + offset, a.x + offset, count, len, a.save_mean + c0, out);
  }
  void finish(int64_t c, const GradSums* p, int64_t stride) {
    GradSums s{0.0, 0.0};
    for (int64_t i = 0; i < plan.chunks; ++i) s = add(s, p[i * stride]);
    coeffs[c] = finish_backward_channel(a, c, s, plan.g.per_channel());
  }
  void apply(int64_t offset, int64_t c0, int64_t count, int64_t len) {
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

void inference_runs(const KernelTable& k, int threads, const RunsPlan& plan,
                    const InferenceArgs& a, Stores stores) {
  std::vector<Affine> affine(plan.g.channels);
  for (int64_t c = 0; c < plan.g.channels; ++c) affine[c] = inference_channel(a, c);
  const int64_t tasks = plan.tasks();
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t t = 0; t < tasks; ++t)
    runs_task(plan, t, [&](int64_t offset, int64_t c0, int64_t count, int64_t len, int64_t) {
      k.runs_affine(a.x + offset, a.y + offset, count, len, affine.data() + c0, stores);
    });
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
  // y = affine(x) over one task.
  void apply(const KernelTable& k, const RowsPlan& plan, const RowsPlan::Task& t, const float* x,
             float* y, Stores stores) {
    for_folded_rows(plan, t, [&](int64_t at, int64_t rows, int64_t columns, int64_t stride, int64_t j) {
      k.rows_affine(x + at, y + at, rows, columns, stride,
                    RowsAffine{arrays.field(0) + j, arrays.field(1) + j, arrays.field(2) + j},
                    stores);
    });
  }
};

// Columns per parallel step of the column merge.
constexpr int64_t kMergeColumns = 512;

// Runs reduce(task, scratch), merge(j0, j1), finish(c) and apply(task) as parallel phases; each
// thread gets its own kernel scratch. merge folds the row chunks' partials of columns [j0, j1)
// together, loops over columns that vectorise; finish then only combines a channel's `inner`
// columns (a per-channel walk over row chunks would be a chain of strided scalar loads).
template <class Op>
void run_rows(const RowsPlan& plan, int threads, Op& op) {
  const int64_t tasks = plan.tasks(), C = plan.g.channels, W = plan.width;
  const int64_t per_thread = kRowsScratch * plan.block_width;
  std::vector<float> scratch(static_cast<size_t>(threads) * per_thread);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t)
      op.reduce(plan.task(t), scratch.data() + thread_index() * per_thread);
#pragma omp for schedule(static)
    for (int64_t j = 0; j < W; j += kMergeColumns) op.merge(j, min_of(W, j + kMergeColumns));
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; ++c) op.finish(c);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) op.apply(plan.task(t));
  }
}

struct TrainRows {
  const KernelTable& k;
  const TrainArgs& a;
  const RowsPlan& plan;
  Stores stores;
  std::vector<double> mean, m2;                 // per row chunk and column
  std::vector<double> column_mean, column_m2;  // per column, all rows
  AffineColumns affine;

  TrainRows(const KernelTable& kt, const TrainArgs& args, const RowsPlan& p, Stores s)
      : k(kt), a(args), plan(p), stores(s), mean(p.row_chunks * p.width),
        m2(p.row_chunks * p.width), column_mean(p.width), column_m2(p.width), affine(p) {}

  void reduce(const RowsPlan::Task& t, float* scratch) {
    const int64_t partial = plan.partial(t);
    k.rows_moments(a.x + plan.offset(t), t.rows, t.columns, plan.width, mean.data() + partial,
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
  void finish(int64_t c) {
    const int64_t inner = plan.g.inner, first = c * inner;
    const Moments m = merge_moments(inner, [&](int64_t i) {
      return ChunkMoments{plan.g.outer, Moments{column_mean[first + i], column_m2[first + i]}};
    });
    affine.set(c, finish_train_channel(a, c, m, plan.g.per_channel()));
  }
  void apply(const RowsPlan::Task& t) { affine.apply(k, plan, t, a.x, a.y, stores); }
};

struct InferenceRows {
  const KernelTable& k;
  const InferenceArgs& a;
  const RowsPlan& plan;
  Stores stores;
  AffineColumns affine;

  InferenceRows(const KernelTable& kt, const InferenceArgs& args, const RowsPlan& p, Stores s)
      : k(kt), a(args), plan(p), stores(s), affine(p) {}

  void reduce(const RowsPlan::Task&, float*) {}
  void merge(int64_t, int64_t) {}
  void finish(int64_t c) { affine.set(c, inference_channel(a, c)); }
  void apply(const RowsPlan::Task& t) { affine.apply(k, plan, t, a.x, a.y, stores); }
};

struct BackwardRows {
  const KernelTable& k;
  const BackwardArgs& a;
  const RowsPlan& plan;
  Stores stores;
  std::vector<double> sum_dy, sum_dy_xc;
  ColumnArrays coeff;  // center, k_dy, k_xc, k_const

  BackwardRows(const KernelTable& kt, const BackwardArgs& args, const RowsPlan& p, Stores s)
      : k(kt), a(args), plan(p), stores(s), sum_dy(p.row_chunks * p.width),
        sum_dy_xc(p.row_chunks * p.width), coeff(4, p) {
    // The reduce phase centres on the saved mean; finish then sets what apply subtracts.
    for (int64_t j = 0; j < p.width; ++j) coeff.field(0)[j] = a.save_mean[j / p.g.inner];
  }

  void reduce(const RowsPlan::Task& t, float* scratch) {
    const int64_t at = plan.offset(t), partial = plan.partial(t);
    k.rows_grad_sums(a.dy + at, a.x + at, t.rows, t.columns, plan.width,
                     coeff.field(0) + t.first_column, sum_dy.data() + partial,
                     sum_dy_xc.data() + partial, scratch);
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
  void finish(int64_t c) {
    const int64_t inner = plan.g.inner, first = c * inner;
    GradSums s{0.0, 0.0};
    for (int64_t j = first; j < first + inner; ++j) s = add(s, GradSums{sum_dy[j], sum_dy_xc[j]});
    const DxCoeffs q = finish_backward_channel(a, c, s, plan.g.per_channel());
    coeff.set(0, first, inner, q.center);
    coeff.set(1, first, inner, q.k_dy);
    coeff.set(2, first, inner, q.k_xc);
    coeff.set(3, first, inner, q.k_const);
  }
  void apply(const RowsPlan::Task& t) {
    for_folded_rows(plan, t, [&](int64_t at, int64_t rows, int64_t columns, int64_t stride, int64_t j) {
      float* const f[4] = {coeff.field(0) + j, coeff.field(1) + j, coeff.field(2) + j,
                           coeff.field(3) + j};
      if (a.use_global_stats)  // dx = dy * k_dy; center and k_const are 0 here
        k.rows_affine(a.dy + at, a.dx + at, rows, columns, stride, RowsAffine{f[0], f[1], f[3]},
                      stores);
      else
        k.rows_dx(a.dy + at, a.x + at, a.dx + at, rows, columns, stride,
                  RowsDxCoeffs{f[0], f[1], f[2], f[3]}, stores);
    });
  }
};

bool rows_layout(const Geometry& g) { return g.inner < kShortRun; }

// A reducing op on whichever layout the geometry calls for: RowsOp on the rows layout, RunsOp
// (with one Coeff per channel, and Partial results per chunk) on the runs layout.
template <class RowsOp, class RunsOp, class Partial, class Coeff, class Args>
void run_layout(const Execution& e, Geometry g, const Args& a, Stores stores) {
  const int threads = threads_for(g.size(), e.threads);
  if (rows_layout(g)) {
    const RowsPlan plan(g, threads);
    RowsOp op(*e.kernels, a, plan, stores);
    run_rows(plan, threads, op);
  } else {
    const RunsPlan plan(g);
    RunsOp op{*e.kernels, a, plan, stores, std::vector<Coeff>(g.channels)};
    run_runs<Partial>(plan, threads, op);
  }
}

}  // namespace

void forward_train(const Execution& e, Geometry g, const TrainArgs& a) {
  g = g.canonical();
  if (g.size() == 0) return;
  run_layout<TrainRows, TrainRuns, Moments, Affine>(e, g, a, stores_for(e, g, {a.x, a.y}));
}

void forward_inference(const Execution& e, Geometry g, const InferenceArgs& a) {
  g = g.canonical();
  if (g.size() == 0) return;
  const int threads = threads_for(g.size(), e.threads);
  const Stores stores = stores_for(e, g, {a.x, a.y});
  if (rows_layout(g)) {
    const RowsPlan plan(g, threads);
    InferenceRows op(*e.kernels, a, plan, stores);
    run_rows(plan, threads, op);
  } else {
    inference_runs(*e.kernels, threads, RunsPlan(g), a, stores);
  }
}

void backward(const Execution& e, Geometry g, const BackwardArgs& a) {
  g = g.canonical();
  if (g.size() == 0) {  // no values: the gradients of gamma and beta are empty sums
    for (int64_t c = 0; c < g.channels; ++c) a.dgamma[c] = a.dbeta[c] = 0.0f;
    return;
  }
  // With global statistics, x is never read.
  const Stores stores = a.use_global_stats ? stores_for(e, g, {a.dy, a.dx})
                                           : stores_for(e, g, {a.dy, a.x, a.dx});
  run_layout<BackwardRows, BackwardRuns, GradSums, DxCoeffs>(e, g, a, stores);
}

}  // namespace bn
