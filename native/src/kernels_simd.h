// The SIMD kernels, written once over a vector abstraction `V` and compiled once per ISA
// (kernels_avx2.cpp, kernels_avx512.cpp, kernels_neon.cpp, each with its own flags).
//
// V provides: type `F` (a vector of W floats), `W`, zero(), set1(f), load(p), store(p, v),
// load_tail(p, n, fill) (lanes >= n take `fill`, n in [0, W]), store_tail(p, v, n), add, sub,
// mul, fma(a, b, c) = a*b + c, sum_lanes(v) (the lanes summed in double), relu(v) (v > 0 ? v : 0,
// NaN kept), positive_bits(v) (bit l set iff lane l > 0), select_bits(bits, v) (lane l: v if
// bit l is set, else 0), kAlignStores (whether elementwise kernels peel a head to align their
// stores), and kStreams (whether it has non-temporal stores; if so, also stream(p, v) to a
// 64-byte aligned p). Kernels never fence their streaming stores: the op layer does, once per
// thread (batchnorm_ops.cpp, fence_streams).
//
// Precision plan (SPEC section 5): float accumulators only ever sum a bounded number of terms
// (runs: one run or piece of at most kRunsChunk floats spread over 4*W lanes; rows: a
// sub-block of kRowsSubBlock rows), then everything is carried in double. Moments are taken
// about a float shift close to the mean (runs: the piece's own mean, from a first pass over
// data still in L1; rows: the first sub-block's own mean, then the running mean), so nothing
// cancels even when the mean is 10^4 times the standard deviation.
//
// Everything here has internal linkage (anonymous namespace) and avoids std:: inline helpers:
// each ISA's translation unit must get its own copy, never one the linker merged from a TU
// compiled with wider instructions than the CPU has.
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernel_table.h"
#include "relu_mask.h"

namespace bn {
namespace {

inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
// Clamps rounding noise below zero; NaN passes through (NaN in the data must propagate).
inline double nonnegative(double v) { return v < 0.0 ? 0.0 : v; }
inline bool is_finite(float v) { return v - v == 0.0f; }

// Rows are reduced in sub-blocks of this many rows, accumulated in float, then merged into
// double; it bounds the number of float additions per lane.
constexpr int64_t kRowsSubBlock = 32;

// Calls fn(std::integral_constant<int, I>) for I = 0 .. N-1. Indexing small arrays of vectors
// with these compile-time constants lets the compiler keep them in registers (a loop index
// would leave them on the stack, one store-forwarding round trip per accumulation).
template <class Fn, int... I>
inline void unroll_impl(Fn&& fn, std::integer_sequence<int, I...>) {
  (fn(std::integral_constant<int, I>{}), ...);
}
template <int N, class Fn>
inline void unroll(Fn&& fn) {
  unroll_impl(fn, std::make_integer_sequence<int, N>{});
}

// Calls fn(std::bool_constant<flag>...) for run-time flags: each combination of flags is its own
// instantiation, so a kernel picks its variant once per call and no loop tests a flag.
template <class Fn>
inline void with_flags(Fn&& fn) {
  fn();
}
template <class Fn, class... Flags>
inline void with_flags(Fn&& fn, bool flag, Flags... rest) {
  const auto bind = [&](auto value) { with_flags([&](auto... more) { fn(value, more...); }, rest...); };
  if (flag)
    bind(std::true_type{});
  else
    bind(std::false_type{});
}
using On = std::true_type;
using Off = std::false_type;

// Stands in for a MaskWriter or MaskReader in the variants without a mask.
struct NoBits {
  template <class... Args>
  explicit NoBits(Args...) {}
  NoBits() = default;
  void push(uint32_t, int64_t) {}
  void prefetch_within(int64_t) {}
  void keep_ahead(int64_t) {}
  void finish() {}
  void fill(int64_t) {}
  uint32_t take(int64_t) { return 0; }
};
template <class Mask>
using Writer = std::conditional_t<Mask::value, MaskWriter, NoBits>;
template <class Mask>
using Reader = std::conditional_t<Mask::value, MaskReader, NoBits>;

// A mask reader that loads a group of up to 64 bits at once (fill), which takes then hand out
// with constant shifts: in the backward's unrolled sums, one load per four vectors instead of a
// test and a refill per vector, which measured 5-15% of a memory-bound pass.
class GroupedBits {
 public:
  static constexpr int64_t kBits = 64;  // the most a fill reads
  GroupedBits() = default;
  GroupedBits(const uint8_t* mask, int64_t first, int64_t n) : reader_(mask, first, n) {}
  void fill(int64_t n) { group_ = reader_.take_wide(n); }
  uint32_t take(int64_t n) {
    const uint32_t bits = static_cast<uint32_t>(group_ & low_bits(n));
    group_ >>= n;
    return bits;
  }
  template <int N>
  uint32_t take_whole() {
    return take(N);
  }

 private:
  MaskReader reader_;
  uint64_t group_ = 0;
};
template <class Mask>
using Grouped = std::conditional_t<Mask::value, GroupedBits, NoBits>;

// Chan's rule for merging a sub-block of n_b rows into n_old rows already merged, per column:
//   delta = mean_b - mean;  mean += delta * n_b / n;  M2 += M2_b + delta^2 * n_old * n_b / n.
// The sub-block arrives as sums of d = x - k (s1) and d^2 (s2) about a float shift k per
// column. The weights are the same for every column, so they are computed once.
struct MergeWeights {
  double inv_nb, w_new, w_cross;
  bool first;
  MergeWeights(int64_t n_old, int64_t n_b)
      : inv_nb(1.0 / static_cast<double>(n_b)),
        w_new(static_cast<double>(n_b) / static_cast<double>(n_old + n_b)),
        w_cross(static_cast<double>(n_old) * static_cast<double>(n_b) /
                static_cast<double>(n_old + n_b)),
        first(n_old == 0) {}

  // Merges `cols` columns. Two loops, each branch-free per column, so the compiler vectorises
  // them (a per-column test of `first` around the load of m2 kept it scalar).
  void merge(int64_t cols, const float* k, const float* s1, const float* s2, double* mean,
             double* m2) const {
    // Inf/NaN in the data make k non-finite and d meaningless: keep k, the IEEE value. (Every
    // load happens whatever the test says: a conditional load would stop the vectoriser.)
    const auto block_mean = [&](int64_t l) {
      const double shift = k[l], with_sum = shift + s1[l] * inv_nb;
      return is_finite(k[l]) ? with_sum : shift;
    };
    const auto block_m2 = [&](int64_t l) {
      return nonnegative(s2[l] - static_cast<double>(s1[l]) * s1[l] * inv_nb);
    };
    if (first) {
      for (int64_t l = 0; l < cols; ++l) {
        mean[l] = block_mean(l);
        m2[l] = block_m2(l);
      }
      return;
    }
    for (int64_t l = 0; l < cols; ++l) {
      const double delta = block_mean(l) - mean[l];
      mean[l] += delta * w_new;
      m2[l] += block_m2(l) + delta * delta * w_cross;
    }
  }
};

template <class V>
struct SimdKernels {
  using F = typename V::F;
  static constexpr int64_t W = V::W;

  // What a loop body gets to read and write one position: a whole vector, or its first n lanes
  // (`n` says how many lanes are real). `load(p, fill)` reads a vector whose lanes past n take
  // `fill`.
  struct WholeLoad {
    static constexpr int64_t n = W;
    F operator()(const float* p, F) const { return V::load(p); }
  };
  struct PartLoad {
    int64_t n;
    F operator()(const float* p, F fill) const { return V::load_tail(p, n, fill); }
  };
  struct WholeStore {
    void operator()(float* p, F v) const { V::store(p, v); }
  };
  struct PartStore {
    int64_t n;
    void operator()(float* p, F v) const { V::store_tail(p, v, n); }
  };
  struct StreamStore {
    void operator()(float* p, F v) const { V::stream(p, v); }
  };

  // Calls body(offset, load, store) over [0, len), in order: full vectors, then one masked tail.
  template <class Body>
  static inline void for_vectors(int64_t len, Body&& body) {
    int64_t i = 0;
    for (; i + W <= len; i += W) body(i, WholeLoad{}, WholeStore{});
    const int64_t rest = len - i;
    if (rest > 0) body(i, PartLoad{rest}, PartStore{rest});
  }

  // for_vectors over [0, len) of a row whose stores go to `out`: where V::kAlignStores, a
  // masked head first, so that the full vectors store to aligned addresses (typed arrays in Node
  // start 16 bytes past a page, so full-width stores would split cache lines). Elementwise
  // kernels only: every element gets the same arithmetic wherever the split falls, so results
  // do not depend on alignment; reductions keep for_vectors, whose grouping never moves.
  template <class Body>
  static inline void for_vectors_aligned(int64_t len, const float* out, Body&& body) {
    constexpr uintptr_t kBytes = W * sizeof(float);
    const uintptr_t misaligned = reinterpret_cast<uintptr_t>(out) % kBytes;
    const int64_t head = !V::kAlignStores || misaligned == 0 || misaligned % sizeof(float) != 0
                             ? 0
                             : min_i64(len, static_cast<int64_t>((kBytes - misaligned) / sizeof(float)));
    if (head > 0) body(0, PartLoad{head}, PartStore{head});
    for_vectors(len - head, [&](int64_t i, auto load, auto store) { body(head + i, load, store); });
  }

  // for_vectors_aligned with streaming stores where `stores` asks and V has them: ordinary
  // stores up to the first 64-byte boundary of `out`, then non-temporal stores over whole cache
  // lines, then ordinary stores for the last partial line. A line is never written both ways,
  // and no partial line goes through the write-combining buffers. Positions are visited in order.
  template <class Body>
  static inline void for_stores(int64_t len, const float* out, Stores stores, Body&& body) {
    if constexpr (V::kStreams) {
      constexpr int64_t kLineFloats = 64 / sizeof(float);
      const uintptr_t misaligned = reinterpret_cast<uintptr_t>(out) % 64;
      if (stores == Stores::kStreaming && misaligned % sizeof(float) == 0) {
        const int64_t head = min_i64(len, static_cast<int64_t>((64 - misaligned) % 64 / sizeof(float)));
        const int64_t lines = (len - head) / kLineFloats * kLineFloats;
        for_vectors(head, body);
        for (int64_t i = head; i < head + lines; i += W) body(i, WholeLoad{}, StreamStore{});
        const int64_t done = head + lines;
        for_vectors(len - done, [&](int64_t i, auto load, auto store) { body(done + i, load, store); });
        return;
      }
    }
    for_vectors_aligned(len, out, body);
  }

  // ---------------------------------------------------------------------------------------
  // Runs.

  // Sum over one run with four independent accumulators, plus the tail.
  // `term(offset, load)` returns the vector to accumulate at `offset`.
  template <class Term>
  static inline F sum_run(int64_t len, Term&& term) {
    F a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
    int64_t i = 0;
    const WholeLoad full;
    for (; i + 4 * W <= len; i += 4 * W) {
      a0 = V::add(a0, term(i, full));
      a1 = V::add(a1, term(i + W, full));
      a2 = V::add(a2, term(i + 2 * W, full));
      a3 = V::add(a3, term(i + 3 * W, full));
    }
    for (; i + W <= len; i += W) a0 = V::add(a0, term(i, full));
    const int64_t rest = len - i;
    if (rest > 0) a1 = V::add(a1, term(i, PartLoad{rest}));
    return V::add(V::add(a0, a1), V::add(a2, a3));
  }

  // Two sums over one run in a single sweep: step(offset, load, a, b) adds its terms at
  // `offset` into the vector accumulators a and b (four of each, plus the tail into the first),
  // visiting the offsets in order. Before each group of four vectors, and before the tail,
  // group(n) learns how many elements the steps to come cover (a ReLU mask reads their bits at
  // once). Returns the two sums, lanes added in double.
  struct Sums {
    double a, b;
  };
  struct NoGroup {
    void operator()(int64_t) const {}
  };
  template <class Step, class Group = NoGroup>
  static inline Sums sum_pair_run(int64_t len, Step&& step, Group&& group = {}) {
    F a[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
    F b[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
    const WholeLoad full;
    int64_t i = 0;
    for (; i + 4 * W <= len; i += 4 * W) {
      group(4 * W);
      unroll<4>([&](auto u) { step(i + u * W, full, a[u], b[u]); });
    }
    if (i < len) {
      group(len - i);
      for_vectors(len - i, [&](int64_t j, auto load, auto) { step(i + j, load, a[0], b[0]); });
    }
    return {V::sum_lanes(V::add(V::add(a[0], a[1]), V::add(a[2], a[3]))),
            V::sum_lanes(V::add(V::add(b[0], b[1]), V::add(b[2], b[3])))};
  }

  static Moments run_moments(const float* run, int64_t len) {
    const double n = static_cast<double>(len);
    // Pass 1: a float estimate K of the mean.
    const double sum =
        V::sum_lanes(sum_run(len, [&](int64_t i, auto load) { return load(run + i, V::zero()); }));
    const float k = static_cast<float>(sum / n);
    // Pass 2 (from L1): shifted sums of d = x - K and d^2. Tail lanes load K, so d = 0 there.
    const F kv = V::set1(k);
    const Sums shifted = sum_pair_run(len, [&](int64_t i, auto load, F& d1, F& d2) {
      const F d = V::sub(load(run + i, kv), kv);
      d1 = V::add(d1, d);
      d2 = V::fma(d, d, d2);
    });
    const double s1 = shifted.a, s2 = shifted.b;
    // Scalar math: mean = K + mean(d); M2 = sum(d^2) - sum(d)^2 / n. A non-finite K (Inf or
    // NaN in the data) leaves d meaningless; the plain sum then carries the IEEE result.
    return {is_finite(k) ? k + s1 / n : sum / n, nonnegative(s2 - s1 * s1 / n)};
  }

  static void runs_moments(const float* x, int64_t count, int64_t len, Moments* out) {
    for (int64_t r = 0; r < count; ++r) out[r] = run_moments(x + r * len, len);
  }

  // ---------------------------------------------------------------------------------------
  // The elementwise kernels and the backward's sums are templates over what they fuse (SPEC
  // section 7), flags passed as On / Off tags; the plain table entries are the instantiations
  // with everything Off, and the fused ones choose theirs once per call (with_flags). Each
  // instantiation is a function of its own with everything inside it inlined (noinline,
  // flatten). Left to GCC's limits, the dispatcher inlined them all and outlined parts of their
  // loops instead: the mask writer's state then lived in memory, and since each mask store
  // (through a uint8_t*, which may alias anything) came after it, every vector reloaded its
  // coefficients too.

  // pre -> y = relu(pre) or pre; y's mask bits (y > 0) for `load`'s real lanes go to `bits`.
  template <class Relu, class Mask, class Load, class Bits>
  static inline F activate(F pre, [[maybe_unused]] Load load, [[maybe_unused]] Bits& bits) {
    F y = pre;
    if constexpr (Relu::value) y = V::relu(pre);
    if constexpr (Mask::value) {
      if constexpr (std::is_same_v<Load, WholeLoad>)
        bits.template push_whole<W>(V::positive_bits(y));
      else
        bits.push(V::positive_bits(y), load.n);
    }
    return y;
  }

  // The residual's vector at p; first asks for its cache line kResidualAheadBytes on. With x, the
  // residual and y's streaming stores in flight, the hardware's prefetchers fell behind on the
  // residual: forwardTrain with residual and ReLU took 1.49-1.86x the plain call without these
  // requests and 1.34-1.58x with them (a C++ loop over the op, alternating builds: NCHW and NHWC
  // [32, 64, 56, 56], NCHW [8, 64, 224, 224], 1 and 2 threads; the bound is 1.5x where the plain
  // call reads x from memory once). Asking for x's lines as well changed nothing.
  static constexpr uintptr_t kResidualAheadBytes = 1024;
  template <class Load>
  static inline F load_residual(const float* p, Load load) {
    __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + kResidualAheadBytes), 0, 3);
    return load(p, V::zero());
  }

  // g = mask bit ? dy : 0 for `load`'s real lanes (a select: NaN dy with bit 0 gives 0).
  template <class Mask, class Load, class Bits>
  static inline F masked(F dy, [[maybe_unused]] Load load, [[maybe_unused]] Bits& bits) {
    if constexpr (!Mask::value)
      return dy;
    else if constexpr (std::is_same_v<Load, WholeLoad>)
      return V::select_bits(bits.template take_whole<W>(), dy);
    else
      return V::select_bits(bits.take(load.n), dy);
  }

  // Whether the backward writes dresidual in the same sweep as dx. Streaming stores need both
  // outputs' cache lines to split at the same offsets; otherwise dresidual = g gets a sweep of
  // its own over each run or row with streaming stores aligned to its lines, before dx's (dx
  // may be dy, and dx's sweep then re-reads dy and the mask from L1/L2). Writing it with
  // ordinary stores instead cost 1.4x the whole backward (every line read for ownership, and
  // the inputs evicted).
  static bool dresidual_with_dx(const float* dresidual, const float* dx, Stores stores) {
    const uintptr_t apart = reinterpret_cast<uintptr_t>(dresidual) - reinterpret_cast<uintptr_t>(dx);
    return stores == Stores::kCached || apart % 64 == 0;
  }

  // out = g (mask bit ? dy : 0) over [0, len): dresidual's own sweep.
  template <class Mask>
  static inline void masked_copy(Mask, const float* dy, float* out, int64_t len, const uint8_t* mask,
                                 int64_t first, Stores stores) {
    Reader<Mask> bits(mask, first, len);
    for_stores(len, out, stores, [&](int64_t i, auto load, auto store) {
      store(out + i, masked<Mask>(load(dy + i, V::zero()), load, bits));
    });
  }

  // Scalar math: pre = (x - center) * scale + shift (+ residual); y = relu(pre) or pre.
  template <class Residual, class Relu, class Mask>
  [[gnu::noinline, gnu::flatten]] static void affine_runs(Residual, Relu, Mask, const float* x, float* y, int64_t count, int64_t len,
                          const Affine* a, const ForwardFusion& f, Stores stores) {
    Writer<Mask> bits(f.mask, f.first);  // the runs lie back to back: one writer for all
    // An NCHW channel's runs lie C runs apart, and so do their mask bytes, where the hardware's
    // prefetchers do not follow; the rows kernels write the mask in order, and asking there cost
    // up to 4% (NHWC [32, 56, 56, 64]).
    bits.prefetch_within(count * len);
    for (int64_t r = 0; r < count; ++r) {
      const float* in = x + r * len;
      const float* res = Residual::value ? f.residual + r * len : nullptr;
      float* out = y + r * len;
      const F center = V::set1(a[r].center), scale = V::set1(a[r].scale);
      const F shift = V::set1(a[r].shift);
      bits.keep_ahead(len);
      for_stores(len, out, stores, [&](int64_t i, auto load, auto store) {
        F pre = V::fma(V::sub(load(in + i, center), center), scale, shift);
        if constexpr (Residual::value) pre = V::add(pre, load_residual(res + i, load));
        store(out + i, activate<Relu, Mask>(pre, load, bits));
      });
    }
    bits.finish();
  }

  static void runs_affine(const float* x, float* y, int64_t count, int64_t len,
                          const Affine* a, Stores stores) {
    affine_runs(Off{}, Off{}, Off{}, x, y, count, len, a, ForwardFusion{}, stores);
  }

  static void runs_affine_fused(const float* x, float* y, int64_t count, int64_t len,
                                const Affine* a, const ForwardFusion& f, Stores stores) {
    with_flags([&](auto... flags) { affine_runs(flags..., x, y, count, len, a, f, stores); },
               f.residual != nullptr, f.relu, f.mask != nullptr);
  }

  // Scalar math: g = mask bit ? dy : 0; sum(g), sum(g * (x - center)). Tail lanes load
  // dy = 0, x = center.
  template <class Mask>
  [[gnu::noinline, gnu::flatten]] static void grad_sums_runs(Mask, const float* dy, const float* x, int64_t count, int64_t len,
                             const float* center, const BackwardFusion& f, GradSums* out) {
    // One sweep for both sums, so the dy and x streams are in flight together.
    static_assert(4 * W <= GroupedBits::kBits, "sum_pair_run's groups of four vectors fill one GroupedBits");
    for (int64_t r = 0; r < count; ++r) {
      const float* g = dy + r * len;
      const float* in = x + r * len;
      const F c = V::set1(center[r]);
      Grouped<Mask> bits(f.mask, f.first + r * len, len);
      const Sums sums = sum_pair_run(
          len,
          [&](int64_t i, auto load, F& s_dy, F& s_dy_xc) {
            const F d = masked<Mask>(load(g + i, V::zero()), load, bits);
            s_dy = V::add(s_dy, d);
            s_dy_xc = V::fma(d, V::sub(load(in + i, c), c), s_dy_xc);
          },
          [&](int64_t n) { bits.fill(n); });
      out[r] = {sums.a, sums.b};
    }
  }

  static void runs_grad_sums(const float* dy, const float* x, int64_t count, int64_t len,
                             const float* center, GradSums* out) {
    grad_sums_runs(Off{}, dy, x, count, len, center, BackwardFusion{}, out);
  }

  static void runs_grad_sums_fused(const float* dy, const float* x, int64_t count, int64_t len,
                                   const float* center, const BackwardFusion& f, GradSums* out) {
    with_flags([&](auto mask) { grad_sums_runs(mask, dy, x, count, len, center, f, out); },
               f.mask != nullptr);
  }

  // Scalar math: g = mask bit ? dy : 0; dx = g * k_dy + (x - center) * k_xc + k_const (without
  // x, for constant statistics: dx = g * k_dy + k_const); dresidual = g.
  template <class Mask, class Residual, class ReadX>
  [[gnu::noinline, gnu::flatten]] static void dx_runs(Mask, Residual, ReadX, const float* dy, const float* x, float* dx,
                      int64_t count, int64_t len, const DxCoeffs* k, const BackwardFusion& f,
                      Stores stores) {
    const bool together = dresidual_with_dx(f.dresidual, dx, stores);
    for (int64_t r = 0; r < count; ++r) {
      const float* g = dy + r * len;
      const float* in = ReadX::value ? x + r * len : nullptr;
      float* out = dx + r * len;
      float* res = Residual::value ? f.dresidual + r * len : nullptr;
      if constexpr (Residual::value)
        if (!together) masked_copy(Mask{}, g, res, len, f.mask, f.first + r * len, stores);
      Reader<Mask> bits(f.mask, f.first + r * len, len);
      const F center = V::set1(k[r].center), k_dy = V::set1(k[r].k_dy);
      const F k_xc = V::set1(k[r].k_xc), k_const = V::set1(k[r].k_const);
      for_stores(len, out, stores, [&](int64_t i, auto load, auto store) {
        const F gi = masked<Mask>(load(g + i, V::zero()), load, bits);
        F d = V::fma(gi, k_dy, k_const);
        if constexpr (ReadX::value) d = V::fma(V::sub(load(in + i, center), center), k_xc, d);
        store(out + i, d);
        if constexpr (Residual::value)
          if (together) store(res + i, gi);
      });
    }
  }

  static void runs_dx(const float* dy, const float* x, float* dx, int64_t count, int64_t len,
                      const DxCoeffs* k, Stores stores) {
    dx_runs(Off{}, Off{}, On{}, dy, x, dx, count, len, k, BackwardFusion{}, stores);
  }

  static void runs_dx_fused(const float* dy, const float* x, float* dx, int64_t count, int64_t len,
                            const DxCoeffs* k, const BackwardFusion& f, Stores stores) {
    with_flags([&](auto... flags) { dx_runs(flags..., dy, x, dx, count, len, k, f, stores); },
               f.mask != nullptr, f.dresidual != nullptr, x != nullptr);
  }

  // ---------------------------------------------------------------------------------------
  // Rows. Every pass sweeps rows in memory order, kRowsPerStep rows at a time, so each load
  // of a per-column coefficient or accumulator serves several rows. Reductions keep their
  // float accumulators in `scratch` (one row of each, in L1) and merge them into double once
  // per sub-block of kRowsSubBlock rows.

  // Reductions take kReduceRows rows per step, so each load and store of a float accumulator
  // in scratch serves that many rows. Elementwise kernels go row by row: one sequential stream
  // per array is what the prefetchers serve best once the data is out of cache, and reloading a
  // coefficient from L1 costs less than interleaving rows (measured on Zen 3).
  static constexpr int kReduceRows = 4;

  // Calls step(first_row, rows) with rows = R (then 1 for the rest) as a compile-time constant:
  // the row loop inside a step unrolls, so every load instruction walks its own row with a
  // constant stride, which the hardware prefetchers follow.
  template <int R, class Step>
  static void for_row_steps(int64_t rows, Step&& step) {
    int64_t r = 0;
    for (; r + R <= rows; r += R) step(r, std::integral_constant<int, R>{});
    for (; r < rows; ++r) step(r, std::integral_constant<int, 1>{});
  }

  static void fill(float* p, int64_t n, float value) {
    for (int64_t i = 0; i < n; ++i) p[i] = value;
  }

  // The first sub-block shifts by its own float mean (a first sweep, re-read from L1/L2);
  // later ones shift by the running mean, so each row is read once and d = x - k stays small.
  static void rows_moments(const float* x, int64_t rows, int64_t width, int64_t stride,
                           double* mean, double* m2, float* scratch) {
    float* k = scratch;
    float* s1 = scratch + width;
    float* s2 = scratch + 2 * width;
    for (int64_t r0 = 0; r0 < rows; r0 += kRowsSubBlock) {
      const int64_t nb = min_i64(kRowsSubBlock, rows - r0);
      const MergeWeights w(r0, nb);
      const float* sub = x + r0 * stride;
      if (w.first) {
        fill(k, width, 0.0f);
        for_row_steps<kReduceRows>(nb, [&](int64_t r1, auto n) {
          for_vectors(width, [&](int64_t c, auto load, auto store) {
            F sum = load(k + c, V::zero());
            unroll<n>([&](auto r) { sum = V::add(sum, load(sub + (r1 + r) * stride + c, V::zero())); });
            store(k + c, sum);
          });
        });
        for (int64_t l = 0; l < width; ++l) k[l] /= static_cast<float>(nb);
      } else {
        for (int64_t l = 0; l < width; ++l) k[l] = static_cast<float>(mean[l]);
      }
      fill(s1, 2 * width, 0.0f);
      for_row_steps<kReduceRows>(nb, [&](int64_t r1, auto n) {
        for_vectors(width, [&](int64_t c, auto load, auto store) {
          const F kv = load(k + c, V::zero());
          F a = load(s1 + c, V::zero()), b = load(s2 + c, V::zero());
          unroll<n>([&](auto r) {
            const F d = V::sub(load(sub + (r1 + r) * stride + c, V::zero()), kv);
            a = V::add(a, d);
            b = V::fma(d, d, b);
          });
          store(s1 + c, a);
          store(s2 + c, b);
        });
      });
      w.merge(width, k, s1, s2, mean, m2);
    }
  }

  // Scalar math as grad_sums_runs, per column. Each of a step's rows reads its own mask bits.
  template <class Mask>
  [[gnu::noinline, gnu::flatten]] static void grad_sums_rows(Mask, const float* dy, const float* x, int64_t rows, int64_t width,
                             int64_t stride, const float* center, double* sum_dy,
                             double* sum_dy_xc, float* scratch, const BackwardFusion& f) {
    float* a = scratch;
    float* b = scratch + width;
    for (int64_t r0 = 0; r0 < rows; r0 += kRowsSubBlock) {
      const int64_t nb = min_i64(kRowsSubBlock, rows - r0);
      fill(a, 2 * width, 0.0f);
      for_row_steps<kReduceRows>(nb, [&](int64_t r1, auto n) {
        Grouped<Mask> bits[n];
        unroll<n>([&](auto i) { bits[i] = Grouped<Mask>(f.mask, f.first + (r0 + r1 + i) * stride, width); });
        // With a mask, columns in groups of kBits, each row's bits for a group read at once.
        const int64_t group = Mask::value ? GroupedBits::kBits : width;
        for (int64_t c0 = 0; c0 < width; c0 += group) {
          const int64_t columns = min_i64(group, width - c0);
          unroll<n>([&](auto i) { bits[i].fill(columns); });
          for_vectors(columns, [&](int64_t j, auto load, auto store) {
            const int64_t c = c0 + j;
            const F cv = load(center + c, V::zero());
            F sa = load(a + c, V::zero()), sb = load(b + c, V::zero());
            unroll<n>([&](auto i) {
              const int64_t at = (r0 + r1 + i) * stride + c;
              const F g = masked<Mask>(load(dy + at, V::zero()), load, bits[i]);
              sa = V::add(sa, g);
              sb = V::fma(g, V::sub(load(x + at, V::zero()), cv), sb);
            });
            store(a + c, sa);
            store(b + c, sb);
          });
        }
      });
      for (int64_t l = 0; l < width; ++l) {
        sum_dy[l] = (r0 == 0 ? 0.0 : sum_dy[l]) + a[l];
        sum_dy_xc[l] = (r0 == 0 ? 0.0 : sum_dy_xc[l]) + b[l];
      }
    }
  }

  static void rows_grad_sums(const float* dy, const float* x, int64_t rows, int64_t width,
                             int64_t stride, const float* center, double* sum_dy,
                             double* sum_dy_xc, float* scratch) {
    grad_sums_rows(Off{}, dy, x, rows, width, stride, center, sum_dy, sum_dy_xc, scratch,
                   BackwardFusion{});
  }

  static void rows_grad_sums_fused(const float* dy, const float* x, int64_t rows, int64_t width,
                                   int64_t stride, const float* center, double* sum_dy,
                                   double* sum_dy_xc, float* scratch, const BackwardFusion& f) {
    with_flags([&](auto mask) {
      grad_sums_rows(mask, dy, x, rows, width, stride, center, sum_dy, sum_dy_xc, scratch, f);
    }, f.mask != nullptr);
  }

  // Scalar math as affine_runs, with per-column coefficients; a mask writer per row.
  template <class Residual, class Relu, class Mask>
  [[gnu::noinline, gnu::flatten]] static void affine_rows(Residual, Relu, Mask, const float* x, float* y, int64_t rows,
                          int64_t width, int64_t stride, const RowsAffine& coefficients,
                          const ForwardFusion& f, Stores stores) {
    // Local copies: the mask's byte stores may alias the caller's structs, which would reload
    // their pointers for every vector.
    const RowsAffine a = coefficients;
    const float* const residual = f.residual;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = r * stride;
      Writer<Mask> bits(f.mask, f.first + row);  // rows are consecutive: no prefetch (see affine_runs)
      for_stores(width, y + row, stores, [&](int64_t c, auto load, auto store) {
        const F center = load(a.center + c, V::zero()), scale = load(a.scale + c, V::zero());
        const F shift = load(a.shift + c, V::zero());
        F pre = V::fma(V::sub(load(x + row + c, V::zero()), center), scale, shift);
        if constexpr (Residual::value) pre = V::add(pre, load_residual(residual + row + c, load));
        store(y + row + c, activate<Relu, Mask>(pre, load, bits));
      });
      bits.finish();
    }
  }

  static void rows_affine(const float* x, float* y, int64_t rows, int64_t width, int64_t stride,
                          const RowsAffine& a, Stores stores) {
    affine_rows(Off{}, Off{}, Off{}, x, y, rows, width, stride, a, ForwardFusion{}, stores);
  }

  static void rows_affine_fused(const float* x, float* y, int64_t rows, int64_t width,
                                int64_t stride, const RowsAffine& a, const ForwardFusion& f, Stores stores) {
    with_flags([&](auto... flags) { affine_rows(flags..., x, y, rows, width, stride, a, f, stores); },
               f.residual != nullptr, f.relu, f.mask != nullptr);
  }

  // Scalar math as dx_runs, with per-column coefficients.
  template <class Mask, class Residual, class ReadX>
  [[gnu::noinline, gnu::flatten]] static void dx_rows(Mask, Residual, ReadX, const float* dy, const float* x, float* dx,
                      int64_t rows, int64_t width, int64_t stride, const RowsDxCoeffs& k,
                      const BackwardFusion& f, Stores stores) {
    const bool together = dresidual_with_dx(f.dresidual, dx, stores);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = r * stride;
      if constexpr (Residual::value)
        if (!together) masked_copy(Mask{}, dy + row, f.dresidual + row, width, f.mask, f.first + row, stores);
      Reader<Mask> bits(f.mask, f.first + row, width);
      for_stores(width, dx + row, stores, [&](int64_t c, auto load, auto store) {
        const F k_dy = load(k.k_dy + c, V::zero()), k_const = load(k.k_const + c, V::zero());
        const F gi = masked<Mask>(load(dy + row + c, V::zero()), load, bits);
        F d = V::fma(gi, k_dy, k_const);
        if constexpr (ReadX::value) {
          const F center = load(k.center + c, V::zero()), k_xc = load(k.k_xc + c, V::zero());
          d = V::fma(V::sub(load(x + row + c, V::zero()), center), k_xc, d);
        }
        store(dx + row + c, d);
        if constexpr (Residual::value)
          if (together) store(f.dresidual + row + c, gi);
      });
    }
  }

  static void rows_dx(const float* dy, const float* x, float* dx, int64_t rows, int64_t width,
                      int64_t stride, const RowsDxCoeffs& k, Stores stores) {
    dx_rows(Off{}, Off{}, On{}, dy, x, dx, rows, width, stride, k, BackwardFusion{}, stores);
  }

  static void rows_dx_fused(const float* dy, const float* x, float* dx, int64_t rows,
                            int64_t width, int64_t stride, const RowsDxCoeffs& k, const BackwardFusion& f,
                            Stores stores) {
    with_flags([&](auto... flags) { dx_rows(flags..., dy, x, dx, rows, width, stride, k, f, stores); },
               f.mask != nullptr, f.dresidual != nullptr, x != nullptr);
  }

  static constexpr KernelTable table(const char* isa) {
    return {isa,          runs_moments,      runs_affine,       runs_grad_sums,
            runs_dx,      rows_moments,      rows_affine,       rows_grad_sums,
            rows_dx,      runs_affine_fused, rows_affine_fused, runs_grad_sums_fused,
            rows_grad_sums_fused, runs_dx_fused, rows_dx_fused};
  }
};

}  // namespace
}  // namespace bn
