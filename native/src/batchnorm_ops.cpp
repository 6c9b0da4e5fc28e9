#include "batchnorm_ops.h"

#include <cmath>
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
// Schedules. Both run the same per-channel pipeline: reduce every chunk of a channel into a
// partial result, finish the channel from its partials (in chunk order), then apply the
// channel's coefficients to every chunk. Work is only ever split at chunk boundaries, so the
// results do not depend on the schedule or the thread count.

// Channel by channel: each thread owns whole channels, so a channel's slab is still in cache
// when the apply pass re-reads it. Needs enough channels to share out evenly.
// reduce(c, k, slot) writes partial k into `slot`, a per-thread array of K partials.
template <class Partial, class Reduce, class Finish, class Apply>
void by_channel(int threads, int64_t channels, int64_t chunks, Reduce&& reduce, Finish&& finish,
                Apply&& apply) {
  std::vector<Partial> scratch(static_cast<size_t>(threads) * chunks);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t c = 0; c < channels; ++c) {
    Partial* partials = scratch.data() + thread_index() * chunks;
    for (int64_t k = 0; k < chunks; ++k) partials[k] = reduce(c, k);
    finish(c, partials);
    for (int64_t k = 0; k < chunks; ++k) apply(c, k);
  }
}

// Phase by phase over all tasks: for few channels (or the rows layout, where one task spans
// many channels). reduce(t) and apply(t) handle task t; finish(c) closes channel c.
template <class Reduce, class Finish, class Apply>
void by_phase(int threads, int64_t tasks, int64_t channels, Reduce&& reduce, Finish&& finish,
              Apply&& apply) {
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) reduce(t);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < channels; ++c) finish(c);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) apply(t);
  }
}

bool channels_share_out(int threads, int64_t channels) {
  return threads == 1 || channels % threads == 0 || channels >= 8 * threads;
}

// ---------------------------------------------------------------------------------------------
// Per-channel math, in double.

struct ChunkMoments {
  int64_t n;
  Moments m;
};

// Parallel-variance rule, in chunk order:
//   mean = sum(n_k * mean_k) / n;   M2 = sum(M2_k + n_k * (mean_k - mean)^2).
template <class At>
Moments merge_moments(int64_t chunks, At&& at) {
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
  // The mean travels as hi + lo so that x - mean keeps double precision (see Affine).
  const float hi = static_cast<float>(m.mean);
  return {hi, static_cast<float>(m.mean - hi),
          static_cast<float>(gamma_at(a.gamma, c) * inv_std), beta_at(a.beta, c)};
}

Affine inference_channel(const InferenceArgs& a, int64_t c) {
  const double inv_std = 1.0 / std::sqrt(static_cast<double>(a.running_var[c]) + a.eps);
  return {a.running_mean[c], 0.0f, static_cast<float>(gamma_at(a.gamma, c) * inv_std),
          beta_at(a.beta, c)};
}

// Writes dgamma and dbeta; returns the channel's dx coefficients. With xhat = (x - mean) invStd:
//   dx = g invStd dy - g invStd dbeta / M - g invStd^2 dgamma / M * (x - mean)
// and with global statistics (constants), dx = g invStd dy.
DxCoeffs finish_backward_channel(const BackwardArgs& a, int64_t c, GradSums s,
                                 int64_t per_channel) {
  const double n = static_cast<double>(per_channel);
  const double inv_std = a.save_inv_std[c];
  const double g_inv_std = gamma_at(a.gamma, c) * inv_std;
  const double dgamma = s.dy_xc * inv_std;
  a.dbeta[c] = static_cast<float>(s.dy);
  a.dgamma[c] = static_cast<float>(dgamma);
  if (a.use_global_stats) return {0.0f, 0.0f, static_cast<float>(g_inv_std), 0.0f, 0.0f};
  return {a.save_mean[c], 0.0f, static_cast<float>(g_inv_std),
          static_cast<float>(-g_inv_std * inv_std * dgamma / n),
          static_cast<float>(-g_inv_std * s.dy / n)};
}

// ---------------------------------------------------------------------------------------------
// Runs layout (inner > 1).

void train_runs(const KernelTable& k, int threads, Geometry g, const TrainArgs& a) {
  const RunsPlan plan(g);
  const int64_t K = plan.chunks_per_channel;
  std::vector<Affine> affine(g.channels);
  const auto reduce = [&](int64_t c, int64_t i) {
    const RunsChunk ch = plan.chunk(c, i);
    return k.runs_moments(a.x + ch.offset, ch.count, ch.len, ch.stride);
  };
  const auto finish = [&](int64_t c, const Moments* partials) {
    const Moments m = merge_moments(
        K, [&](int64_t i) { return ChunkMoments{plan.chunk(c, i).elements(), partials[i]}; });
    affine[c] = finish_train_channel(a, c, m, g.per_channel());
  };
  const auto apply = [&](int64_t c, int64_t i) {
    const RunsChunk ch = plan.chunk(c, i);
    k.runs_affine(a.x + ch.offset, a.y + ch.offset, ch.count, ch.len, ch.stride, affine[c]);
  };
  if (channels_share_out(threads, g.channels)) {
    by_channel<Moments>(threads, g.channels, K, reduce, finish, apply);
    return;
  }
  std::vector<Moments> partials(g.channels * K);
  by_phase(
      threads, g.channels * K, g.channels,
      [&](int64_t t) { partials[t] = reduce(t / K, t % K); },
      [&](int64_t c) { finish(c, partials.data() + c * K); },
      [&](int64_t t) { apply(t / K, t % K); });
}

void inference_runs(const KernelTable& k, int threads, Geometry g, const InferenceArgs& a) {
  const RunsPlan plan(g);
  const int64_t K = plan.chunks_per_channel;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t t = 0; t < g.channels * K; ++t) {
    const RunsChunk ch = plan.chunk(t / K, t % K);
    k.runs_affine(a.x + ch.offset, a.y + ch.offset, ch.count, ch.len, ch.stride,
                  inference_channel(a, t / K));
  }
}

void backward_runs(const KernelTable& k, int threads, Geometry g, const BackwardArgs& a) {
  const RunsPlan plan(g);
  const int64_t K = plan.chunks_per_channel;
  std::vector<DxCoeffs> coeffs(g.channels);
  const auto reduce = [&](int64_t c, int64_t i) {
    const RunsChunk ch = plan.chunk(c, i);
    return k.runs_grad_sums(a.dy + ch.offset, a.x + ch.offset, ch.count, ch.len, ch.stride,
                            a.save_mean[c], 0.0f);
  };
  const auto finish = [&](int64_t c, const GradSums* partials) {
    GradSums s{0.0, 0.0};
    for (int64_t i = 0; i < K; ++i) {
      s.dy += partials[i].dy;
      s.dy_xc += partials[i].dy_xc;
    }
    coeffs[c] = finish_backward_channel(a, c, s, g.per_channel());
  };
  const auto apply = [&](int64_t c, int64_t i) {
    const RunsChunk ch = plan.chunk(c, i);
    const DxCoeffs& q = coeffs[c];
    if (a.use_global_stats)  // dx = dy * g invStd: x is not read
      k.runs_affine(a.dy + ch.offset, a.dx + ch.offset, ch.count, ch.len, ch.stride,
                    Affine{0.0f, 0.0f, q.k_dy, 0.0f});
    else
      k.runs_dx(a.dy + ch.offset, a.x + ch.offset, a.dx + ch.offset, ch.count, ch.len, ch.stride,
                q);
  };
  if (channels_share_out(threads, g.channels)) {
    by_channel<GradSums>(threads, g.channels, K, reduce, finish, apply);
    return;
  }
  std::vector<GradSums> partials(g.channels * K);
  by_phase(
      threads, g.channels * K, g.channels,
      [&](int64_t t) { partials[t] = reduce(t / K, t % K); },
      [&](int64_t c) { finish(c, partials.data() + c * K); },
      [&](int64_t t) { apply(t / K, t % K); });
}

// ---------------------------------------------------------------------------------------------
// Rows layout (inner == 1). Tasks are (row chunk, column block) pairs; partial results are
// stored per row chunk and channel, and merged per channel in row-chunk order.

struct RowsTask {
  int64_t first_row, rows, first_channel, width;
  int64_t offset(int64_t channels) const { return first_row * channels + first_channel; }
};

RowsTask rows_task(const RowsPlan& plan, int64_t t) {
  const int64_t rk = t / plan.column_blocks, b = t % plan.column_blocks;
  return {plan.first_row(rk), plan.rows(rk), plan.first_channel(b), plan.channels(b)};
}

// Per-channel float coefficient arrays, one block of `channels` floats per field.
struct CoeffArrays {
  std::vector<float> data;
  int64_t channels;
  CoeffArrays(int fields, int64_t c) : data(fields * c), channels(c) {}
  float* field(int i) { return data.data() + i * channels; }
};

void train_rows(const KernelTable& k, int threads, Geometry g, const TrainArgs& a) {
  const RowsPlan plan(g);
  const int64_t C = g.channels;
  std::vector<double> mean(plan.row_chunks * C), m2(plan.row_chunks * C);
  CoeffArrays coeff(4, C);
  const RowsAffine affine{coeff.field(0), coeff.field(1), coeff.field(2), coeff.field(3)};
  by_phase(
      threads, plan.row_chunks * plan.column_blocks, C,
      [&](int64_t t) {
        const RowsTask task = rows_task(plan, t);
        const int64_t at = task.first_row / plan.rows_per_chunk * C + task.first_channel;
        k.rows_moments(a.x + task.offset(C), task.rows, task.width, C, mean.data() + at,
                       m2.data() + at);
      },
      [&](int64_t c) {
        const Moments m = merge_moments(plan.row_chunks, [&](int64_t rk) {
          return ChunkMoments{plan.rows(rk), Moments{mean[rk * C + c], m2[rk * C + c]}};
        });
        const Affine f = finish_train_channel(a, c, m, g.per_channel());
        coeff.field(0)[c] = f.mean_hi;
        coeff.field(1)[c] = f.mean_lo;
        coeff.field(2)[c] = f.scale;
        coeff.field(3)[c] = f.shift;
      },
      [&](int64_t t) {
        const RowsTask task = rows_task(plan, t);
        const int64_t at = task.offset(C), c0 = task.first_channel;
        k.rows_affine(a.x + at, a.y + at, task.rows, task.width, C,
                      RowsAffine{affine.mean_hi + c0, affine.mean_lo + c0, affine.scale + c0,
                                 affine.shift + c0});
      });
}

void inference_rows(const KernelTable& k, int threads, Geometry g, const InferenceArgs& a) {
  const RowsPlan plan(g);
  const int64_t C = g.channels;
  CoeffArrays coeff(4, C);
  by_phase(
      threads, plan.row_chunks * plan.column_blocks, C, [](int64_t) {},
      [&](int64_t c) {
        const Affine f = inference_channel(a, c);
        coeff.field(0)[c] = f.mean_hi;
        coeff.field(1)[c] = f.mean_lo;
        coeff.field(2)[c] = f.scale;
        coeff.field(3)[c] = f.shift;
      },
      [&](int64_t t) {
        const RowsTask task = rows_task(plan, t);
        const int64_t at = task.offset(C), c0 = task.first_channel;
        k.rows_affine(a.x + at, a.y + at, task.rows, task.width, C,
                      RowsAffine{coeff.field(0) + c0, coeff.field(1) + c0, coeff.field(2) + c0,
                                 coeff.field(3) + c0});
      });
}

void backward_rows(const KernelTable& k, int threads, Geometry g, const BackwardArgs& a) {
  const RowsPlan plan(g);
  const int64_t C = g.channels;
  std::vector<double> sum_dy(plan.row_chunks * C), sum_dy_xc(plan.row_chunks * C);
  // Fields: mean_hi, mean_lo, k_dy, k_xc, k_const. mean_lo stays 0 (the saved mean is a float).
  CoeffArrays coeff(5, C);
  by_phase(
      threads, plan.row_chunks * plan.column_blocks, C,
      [&](int64_t t) {
        const RowsTask task = rows_task(plan, t);
        const int64_t at = task.first_row / plan.rows_per_chunk * C + task.first_channel;
        k.rows_grad_sums(a.dy + task.offset(C), a.x + task.offset(C), task.rows, task.width, C,
                         a.save_mean + task.first_channel, coeff.field(1) + task.first_channel,
                         sum_dy.data() + at, sum_dy_xc.data() + at);
      },
      [&](int64_t c) {
        GradSums s{0.0, 0.0};
        for (int64_t rk = 0; rk < plan.row_chunks; ++rk) {
          s.dy += sum_dy[rk * C + c];
          s.dy_xc += sum_dy_xc[rk * C + c];
        }
        const DxCoeffs q = finish_backward_channel(a, c, s, g.per_channel());
        coeff.field(0)[c] = q.mean_hi;
        coeff.field(2)[c] = q.k_dy;
        coeff.field(3)[c] = q.k_xc;
        coeff.field(4)[c] = q.k_const;
      },
      [&](int64_t t) {
        const RowsTask task = rows_task(plan, t);
        const int64_t at = task.offset(C), c0 = task.first_channel;
        float* const f[5] = {coeff.field(0) + c0, coeff.field(1) + c0, coeff.field(2) + c0,
                             coeff.field(3) + c0, coeff.field(4) + c0};
        if (a.use_global_stats)  // dx = dy * k_dy; fields 0, 1 and 4 are all zero here
          k.rows_affine(a.dy + at, a.dx + at, task.rows, task.width, C,
                        RowsAffine{f[0], f[1], f[2], f[4]});
        else
          k.rows_dx(a.dy + at, a.x + at, a.dx + at, task.rows, task.width, C,
                    RowsDxCoeffs{f[0], f[1], f[2], f[3], f[4]});
      });
}

}  // namespace

void forward_train(const KernelTable& k, int threads, Geometry g, const TrainArgs& a) {
  g = g.canonical();
  if (g.size() == 0) return;
  const int nt = threads_for(g.size(), threads);
  g.rows_layout() ? train_rows(k, nt, g, a) : train_runs(k, nt, g, a);
}

void forward_inference(const KernelTable& k, int threads, Geometry g, const InferenceArgs& a) {
  g = g.canonical();
  if (g.size() == 0) return;
  const int nt = threads_for(g.size(), threads);
  g.rows_layout() ? inference_rows(k, nt, g, a) : inference_runs(k, nt, g, a);
}

void backward(const KernelTable& k, int threads, Geometry g, const BackwardArgs& a) {
  g = g.canonical();
  if (g.size() == 0) {  // no values: the gradients of gamma and beta are empty sums
    for (int64_t c = 0; c < g.channels; ++c) a.dgamma[c] = a.dbeta[c] = 0.0f;
    return;
  }
  const int nt = threads_for(g.size(), threads);
  g.rows_layout() ? backward_rows(k, nt, g, a) : backward_runs(k, nt, g, a);
}

}  // namespace bn
