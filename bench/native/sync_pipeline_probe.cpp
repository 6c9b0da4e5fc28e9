// What pipelining the synchronized layer step by channel groups could recover (issue 14), before
// building it. Two threads stand for two worker_threads replicas of one process, each with its
// own NCHW shard; the exchange is a spin barrier on shared memory, as a native op could run it
// between the replicas' calls. Per step (forward, then backward), each replica:
//
//   plain     channel by channel: reduce the channel, then normalise it while its slab is in L2
//             (what the unsynchronized kernels do on long runs);
//   split     reduce every channel, exchange once, normalise every channel (what the layer's
//             synchronized step does today: the second pass reads the shard from memory again);
//   pipe G    per group of G channels: reduce, exchange, normalise.
//
// The kernels are simplified stand-ins with the same memory traffic as ours (AVX2 loads, streaming
// stores of the outputs); the statistics are not the package's numerics. Build and run (x86-64
// with AVX2):
//
//   g++ -std=c++17 -O2 -mavx2 -mfma -pthread bench/native/sync_pipeline_probe.cpp -o /tmp/probe
//   /tmp/probe [steps] [N C HW]      (default 30 steps of [16, 64, 3136] per replica)
//
// It prints each variant's median step (the later of the two replicas' ends minus the earlier
// start) and its overhead over plain.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

constexpr int kReplicas = 2;
constexpr int kLanes = 8;

struct Shape {
  int n, c, hw;
  size_t size() const { return size_t(n) * c * hw; }
};

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Arrivals only grow; the k-th wait of every replica returns once all have arrived k times.
class SpinBarrier {
 public:
  void wait(long& arrivals) {
    ++arrivals;
    count_.fetch_add(1, std::memory_order_acq_rel);
    while (count_.load(std::memory_order_acquire) < arrivals * kReplicas) _mm_pause();
  }

 private:
  alignas(64) std::atomic<long> count_{0};
};

float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// sum(x - k) and sum((x - k)^2) over one run, k its first element.
void run_moments(const float* x, int len, double& s1, double& s2) {
  const __m256 k = _mm256_set1_ps(x[0]);
  __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
  for (int i = 0; i + kLanes <= len; i += kLanes) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), k);
    a = _mm256_add_ps(a, d);
    b = _mm256_fmadd_ps(d, d, b);
  }
  s1 += hsum(a) + double(len) * x[0];
  s2 += hsum(b);
}

// sum(dy) and sum(dy * (x - mean)) over one run.
void run_grad_sums(const float* dy, const float* x, int len, float mean, double& s1, double& s2) {
  const __m256 m = _mm256_set1_ps(mean);
  __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
  for (int i = 0; i + kLanes <= len; i += kLanes) {
    const __m256 g = _mm256_loadu_ps(dy + i);
    a = _mm256_add_ps(a, g);
    b = _mm256_fmadd_ps(g, _mm256_sub_ps(_mm256_loadu_ps(x + i), m), b);
  }
  s1 += hsum(a);
  s2 += hsum(b);
}

// out = a * ka + c (+ b * kb), streamed (out 32-byte aligned).
void run_affine(const float* a, const float* b, float* out, int len, float ka, float c, float kb) {
  const __m256 va = _mm256_set1_ps(ka), vc = _mm256_set1_ps(c), vb = _mm256_set1_ps(kb);
  for (int i = 0; i + kLanes <= len; i += kLanes) {
    __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), va, vc);
    if (b) v = _mm256_fmadd_ps(_mm256_loadu_ps(b + i), vb, v);
    _mm256_stream_ps(out + i, v);
  }
}

struct Shard {
  Shape s;
  std::vector<float*> arrays;  // x, dy, y, dx
  std::vector<float> mean, inv_std;

  explicit Shard(Shape shape) : s(shape), mean(shape.c), inv_std(shape.c) {
    for (int k = 0; k < 4; ++k) {
      auto* a = static_cast<float*>(std::aligned_alloc(64, (s.size() * sizeof(float) + 63) / 64 * 64));
      for (size_t i = 0; i < s.size(); ++i) a[i] = float(std::rand()) / RAND_MAX;
      arrays.push_back(a);
    }
  }
  ~Shard() {
    for (float* a : arrays) std::free(a);
  }
  float* run(int array, int n, int c) const { return arrays[array] + (size_t(n) * s.c + c) * s.hw; }
};
enum { kX, kDy, kY, kDx };

// The replicas' per-channel sums, double-buffered by exchange parity: a replica can be one
// exchange ahead of another, never two (it would have to pass an exchange the other has not
// reached).
struct Slots {
  std::vector<double> data;
  int channels;
  explicit Slots(int c) : data(size_t(2) * kReplicas * c * 2), channels(c) {}
  double* at(long parity, int rank, int c) { return &data[((parity * kReplicas + rank) * channels + c) * 2]; }
};

struct Replica {
  Shard& shard;
  Slots& slots;
  SpinBarrier& barrier;
  int rank;
  long arrivals = 0, exchanges = 0;

  void reduce(bool forward, int c, double* out) {
    double a = 0, b = 0;
    for (int n = 0; n < shard.s.n; ++n) {
      if (forward)
        run_moments(shard.run(kX, n, c), shard.s.hw, a, b);
      else
        run_grad_sums(shard.run(kDy, n, c), shard.run(kX, n, c), shard.s.hw, shard.mean[c], a, b);
    }
    out[0] = a;
    out[1] = b;
  }

  void apply(bool forward, int c, const double* total, double count) {
    const Shape& s = shard.s;
    if (forward) {
      const double mean = total[0] / count, var = std::max(0.0, total[1] / count - mean * mean);
      shard.mean[c] = float(mean);
      shard.inv_std[c] = float(1 / std::sqrt(var + 1e-5));
      for (int n = 0; n < s.n; ++n)
        run_affine(shard.run(kX, n, c), nullptr, shard.run(kY, n, c), s.hw, shard.inv_std[c], -shard.mean[c] * shard.inv_std[c], 0);
    } else {
      const float k = shard.inv_std[c], kx = float(-total[1] / count * k * k * k);
      const float shift = float(-total[0] / count * k) - kx * shard.mean[c];
      for (int n = 0; n < s.n; ++n)
        run_affine(shard.run(kDy, n, c), shard.run(kX, n, c), shard.run(kDx, n, c), s.hw, k, shift, kx);
    }
  }

  // One pass over every channel in groups of `group`, exchanging per group when `synced`.
  void pass(bool forward, int group, bool synced) {
    const Shape& s = shard.s;
    const double count = double(s.n) * s.hw * (synced ? kReplicas : 1);
    std::vector<double> own(size_t(s.c) * 2), total(size_t(s.c) * 2);
    for (int c0 = 0; c0 < s.c; c0 += group) {
      const int c1 = std::min(s.c, c0 + group);
      for (int c = c0; c < c1; ++c) reduce(forward, c, &own[c * 2]);
      if (synced) {
        const long parity = exchanges++ & 1;
        for (int c = c0; c < c1; ++c) std::copy_n(&own[c * 2], 2, slots.at(parity, rank, c));
        barrier.wait(arrivals);
        for (int c = c0; c < c1; ++c) {
          total[c * 2] = total[c * 2 + 1] = 0;
          for (int r = 0; r < kReplicas; ++r) {
            total[c * 2] += slots.at(parity, r, c)[0];
            total[c * 2 + 1] += slots.at(parity, r, c)[1];
          }
        }
      } else {
        std::copy(own.begin() + c0 * 2, own.begin() + c1 * 2, total.begin() + c0 * 2);
      }
      for (int c = c0; c < c1; ++c) apply(forward, c, &total[c * 2], count);
    }
    _mm_sfence();  // once per pass, as the package's ops do
  }
};

struct Variant {
  const char* name;
  int group;  // 0: all channels
  bool synced;
};

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 30;
  const Shape shape = argc > 4 ? Shape{std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4])} : Shape{16, 64, 3136};
  if (steps < 1 || shape.n < 1 || shape.c < 1 || shape.hw < kLanes || shape.hw % kLanes != 0) {
    std::fprintf(stderr, "usage: probe [steps] [N C HW], HW a multiple of %d\n", kLanes);
    return 1;
  }
  const std::vector<Variant> variants = {{"plain", 1, false}, {"split", 0, true},     {"pipe G=1", 1, true},
                                         {"pipe G=2", 2, true}, {"pipe G=4", 4, true}, {"pipe G=8", 8, true}};
  constexpr int kWarmup = 3;
  std::vector<std::vector<double>> times(variants.size());
  double start[kReplicas], end[kReplicas];
  Slots slots(shape.c);
  SpinBarrier barrier;
  auto replica = [&](int rank) {
    Shard shard(shape);
    Replica r{shard, slots, barrier, rank};
    for (int step = 0; step < kWarmup + steps; ++step) {
      for (size_t v = 0; v < variants.size(); ++v) {
        const Variant& var = variants[(v + step) % variants.size()];  // rotate the order
        const int group = var.group ? var.group : shape.c;
        barrier.wait(r.arrivals);
        start[rank] = now_ms();
        r.pass(true, group, var.synced);
        r.pass(false, group, var.synced);
        end[rank] = now_ms();
        barrier.wait(r.arrivals);
        if (rank == 0 && step >= kWarmup)
          times[(v + step) % variants.size()].push_back(*std::max_element(end, end + kReplicas) - *std::min_element(start, start + kReplicas));
      }
    }
  };
  std::vector<std::thread> threads;
  for (int rank = 0; rank < kReplicas; ++rank) threads.emplace_back(replica, rank);
  for (std::thread& t : threads) t.join();
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double plain = median(times[0]);
  std::printf("[%d, %d, %d] per replica, %d replicas, %d steps:\n", shape.n, shape.c, shape.hw, kReplicas, steps);
  for (size_t v = 0; v < variants.size(); ++v)
    std::printf("  %-9s %.3f ms  %+.1f%%\n", variants[v].name, median(times[v]), 100 * (median(times[v]) / plain - 1));
}
