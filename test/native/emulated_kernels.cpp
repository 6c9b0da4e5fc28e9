// The SIMD kernels' store logic on plain-C++ vectors of 4, 8 and 16 floats, so that the paths of
// ISAs this machine may lack (AVX-512's aligned head, 16-float streaming) run everywhere. The
// emulated stream() fails on any address that is not 64-byte aligned and records every line it
// writes; the test then checks that
//   - streaming and cached stores give the same bits, for every offset and many lengths, for
//     the plain kernels and the fused ones (SPEC section 7: y with its ReLU mask, dx with
//     dresidual at the same and at another cache-line phase);
//   - streamed lines are whole: each one gets exactly 64 bytes of streaming stores and no
//     ordinary store;
//   - the mask writer and reader (relu_mask.h) give every bit right when a tensor's elements are
//     cut into ranges at arbitrary offsets, in any order, over a mask full of garbage.
// Built and run by test/emulated-kernels.test.ts; prints "ok <cases>" or the first failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "../../native/src/kernels_simd.h"

namespace {

std::map<uintptr_t, int> g_streamed;  // line address -> bytes streamed into it
std::set<uintptr_t> g_stored;         // lines that got an ordinary store

void fail(const char* what) {
  std::printf("FAIL %s\n", what);
  std::exit(1);
}

void note_stored(const float* p, int64_t n) {
  for (int64_t l = 0; l < n; ++l) g_stored.insert(reinterpret_cast<uintptr_t>(p + l) / 64);
}

template <int N, bool kAlign>
struct Emulated {
  struct F {
    float v[N];
  };
  static constexpr int64_t W = N;
  static F set1(float x) {
    F r;
    for (float& l : r.v) l = x;
    return r;
  }
  static F zero() { return set1(0.0f); }
  static F load(const float* p) {
    F r;
    std::memcpy(r.v, p, sizeof r.v);
    return r;
  }
  static void store(float* p, F v) {
    std::memcpy(p, v.v, sizeof v.v);
    note_stored(p, N);
  }
  static F load_tail(const float* p, int64_t n, F fill) {
    for (int64_t l = 0; l < n; ++l) fill.v[l] = p[l];
    return fill;
  }
  static void store_tail(float* p, F v, int64_t n) {
    std::memcpy(p, v.v, sizeof(float) * n);
    note_stored(p, n);
  }
  static constexpr bool kAlignStores = kAlign;
  static constexpr bool kStreams = true;
  static void stream(float* p, F v) {
    if (reinterpret_cast<uintptr_t>(p) % (N * sizeof(float) < 64 ? N * sizeof(float) : 64) != 0)
      fail("stream() to a misaligned address");
    std::memcpy(p, v.v, sizeof v.v);
    g_streamed[reinterpret_cast<uintptr_t>(p) / 64] += N * sizeof(float);
  }
  template <class Op>
  static F map(F a, F b, Op op) {
    for (int l = 0; l < N; ++l) a.v[l] = op(a.v[l], b.v[l]);
    return a;
  }
  static F add(F a, F b) { return map(a, b, [](float x, float y) { return x + y; }); }
  static F sub(F a, F b) { return map(a, b, [](float x, float y) { return x - y; }); }
  static F mul(F a, F b) { return map(a, b, [](float x, float y) { return x * y; }); }
  static F fma(F a, F b, F c) {
    for (int l = 0; l < N; ++l) a.v[l] = std::fma(a.v[l], b.v[l], c.v[l]);
    return a;
  }
  static double sum_lanes(F v) {
    double s = 0.0;
    for (float l : v.v) s += l;
    return s;
  }
  static F relu(F v) {
    for (float& l : v.v) l = l > 0.0f || l != l ? l : 0.0f;
    return v;
  }
  static uint32_t positive_bits(F v) {
    uint32_t bits = 0;
    for (int l = 0; l < N; ++l) bits |= static_cast<uint32_t>(v.v[l] > 0.0f) << l;
    return bits;
  }
  static F select_bits(uint32_t bits, F v) {
    for (int l = 0; l < N; ++l) v.v[l] = (bits >> l) & 1 ? v.v[l] : 0.0f;
    return v;
  }
};

// Every line touched by a streaming run must be whole (64 bytes streamed) and never stored to.
void check_lines(const char* what) {
  for (const auto& [line, bytes] : g_streamed) {
    if (bytes != 64) fail(what);
    if (g_stored.count(line)) fail(what);
  }
}

// The inputs and coefficients of every check: x and dy, three runs' affine maps and dx
// coefficients, and per-column arrays of 2048 floats for the rows kernels.
struct Inputs {
  std::vector<float> x, dy, columns;
  const bn::Affine affine[3] = {{0.5f, 1.5f, -0.25f}, {1.0f, 0.75f, 0.5f}, {-0.5f, 2.0f, 0.0f}};
  const bn::DxCoeffs dx_coeffs[3] = {{0.5f, 1.5f, -0.25f, 0.1f}, {1.0f, 0.75f, 0.5f, -0.2f},
                                     {-0.5f, 2.0f, 0.0f, 0.3f}};
  Inputs() : x(8192), dy(8192), columns(4 * 2048) {
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = std::sin(0.37f * i) * 3.0f + 1.0f;
      dy[i] = std::cos(0.11f * i);
    }
    for (size_t i = 0; i < columns.size(); ++i) columns[i] = 0.25f + 0.001f * i;
  }
  const float* column(int field) const { return columns.data() + field * 2048; }
  bn::RowsAffine rows_affine() const { return {column(0), column(1), column(2)}; }
  bn::RowsDxCoeffs rows_dx() const { return {column(0), column(1), column(2), column(3)}; }
};

// The fused kernels (SPEC section 7): y = relu(affine(x) + residual) with its mask, and
// dx with g = mask ? dy : 0 and dresidual = g. Streaming and cached stores must agree on every
// output, mask included, and streamed lines must be whole, dresidual's too.
template <class K>
int check_fused(const Inputs& in) {
  int cases = 0;
  const std::vector<float>&x = in.x, &dy = in.dy;
  std::vector<float> out(8192 + 64), res(8192 + 64);
  std::vector<uint8_t> mask(8192 / 8 + 8);
  for (int64_t offset = 0; offset < 16; offset += 3) {
    for (int64_t res_offset : {offset, (offset + 5) % 16}) {  // dresidual in phase with dx, or not
      for (int64_t len : {1, 7, 17, 33, 100, 255, 1000, 2049}) {
        const int64_t rows = 3, width = len < 2048 ? len : 2047, stride = width + 3, first = 13;
        auto run = [&](bn::Stores stores, int which) {
          std::fill(out.begin(), out.end(), -7.0f);
          std::fill(res.begin(), res.end(), -7.0f);
          std::fill(mask.begin(), mask.end(), 0xA5);
          float* o = out.data() + offset;
          float* d = res.data() + res_offset;
          const bn::ForwardFusion ff{dy.data(), true, mask.data(), first};
          const bn::BackwardFusion bf{mask.data(), first, d};
          // The variants with everything fused, called directly (the dispatchers would compile all
          // of them, for minutes): every store of the others is one of these.
          const bn::On on;
          switch (which) {
            case 0: K::affine_runs(on, on, on, x.data(), o, 3, len, in.affine, ff, stores); break;
            case 1: K::affine_rows(on, on, on, x.data(), o, rows, width, stride, in.rows_affine(), ff, stores); break;
            case 2: K::dx_runs(on, on, on, dy.data(), x.data(), o, 3, len, in.dx_coeffs, bf, stores); break;
            default: K::dx_rows(on, on, bn::Off{}, dy.data(), nullptr, o, rows, width, stride, in.rows_dx(), bf, stores); break;
          }
        };
        for (int which = 0; which < 4; ++which) {
          if (which >= 2) {  // a mask to read: the bits of dy > 0
            std::fill(mask.begin(), mask.end(), 0);
            for (int64_t i = 0; i < 3 * stride; ++i) mask[(first + i) / 8] |= (dy[i] > 0.0f) << ((first + i) % 8);
          }
          const std::vector<uint8_t> read_mask = mask;
          run(bn::Stores::kCached, which);
          const std::vector<float> cached_out = out, cached_res = res;
          const std::vector<uint8_t> cached_mask = mask;
          g_streamed.clear();
          g_stored.clear();
          if (which >= 2) std::copy(read_mask.begin(), read_mask.end(), mask.begin());
          run(bn::Stores::kStreaming, which);
          if (which >= 2) {
            if (out != cached_out || res != cached_res) fail("fused backward: streaming and cached stores differ");
          } else if (out != cached_out || mask != cached_mask) {
            fail("fused forward: streaming and cached stores differ");
          }
          check_lines("a streamed line of a fused kernel is partial or also stored to");
          ++cases;
        }
      }
    }
  }
  return cases;
}

// Cuts elements [0, n) into ranges at random offsets and writes each range's bits with its own
// MaskWriter, in a random order, over garbage; then reads random ranges back with MaskReader,
// in takes of 1 to 16 bits (as vectors take them), whole vectors of 8 or 16 bits, and wide takes
// of up to 64 (mostly 64).
int check_mask_ranges() {
  std::mt19937 random(20261130);
  int cases = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t n = 1 + random() % 3000;
    std::vector<uint8_t> want((n + 7) / 8, 0), mask((n + 7) / 8);
    std::vector<uint32_t> bit(n);
    for (int64_t i = 0; i < n; ++i) {
      bit[i] = random() & 1;
      want[i / 8] |= bit[i] << (i % 8);
    }
    for (auto& b : mask) b = static_cast<uint8_t>(random());
    if (n % 8) mask.back() &= static_cast<uint8_t>((1u << (n % 8)) - 1);  // as the op layer clears them
    std::vector<int64_t> cuts = {0, n};
    for (int k = random() % 12; k > 0; --k) cuts.push_back(random() % (n + 1));
    std::sort(cuts.begin(), cuts.end());
    std::vector<size_t> order(cuts.size() - 1);
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::shuffle(order.begin(), order.end(), random);
    for (size_t k : order) {
      bn::MaskWriter w(mask.data(), cuts[k]);
      // Pushes of 1 to 16 bits, as vectors give; most writers also take whole vectors of 8 or 16
      // through push_whole, as the SIMD kernels' full vectors do, between partial ones.
      const int64_t whole = random() % 3 == 0 ? 0 : random() % 2 ? 8 : 16;
      for (int64_t i = cuts[k]; i < cuts[k + 1];) {
        const int64_t left = cuts[k + 1] - i;
        const int64_t count = std::min<int64_t>(whole && random() % 4 ? whole : 1 + random() % 16, left);
        uint32_t bits = static_cast<uint32_t>(random()) << count;  // garbage above the count
        for (int64_t l = 0; l < count; ++l) bits |= bit[i + l] << l;
        if (count == 16 && whole == 16)
          w.push_whole<16>(bits);
        else if (count == 8 && whole == 8)
          w.push_whole<8>(bits);
        else
          w.push(bits, count);
        i += count;
      }
      w.finish();
    }
    if (mask != want) fail("mask written in ranges differs from the bit-by-bit mask");
    for (int k = 0; k < 20; ++k) {
      const int64_t first = random() % n, count = 1 + random() % (n - first);
      bn::MaskReader r(mask.data(), first, count);
      for (int64_t i = first; i < first + count;) {
        // Takes of 1 to 16 bits, wide ones, and whole vectors of 8 or 16 (take_whole).
        const int kind = random() % 4, whole = kind == 2 ? 8 : 16;
        const int64_t want_bits = kind == 0 ? (random() % 4 ? 64 : 1 + random() % 64) : kind == 1 ? 1 + random() % 16 : whole;
        const int64_t take = std::min<int64_t>(want_bits, first + count - i);
        const uint64_t bits = kind == 0             ? r.take_wide(take)
                              : take < whole || kind == 1 ? r.take(take)
                              : whole == 8          ? r.take_whole<8>()
                                                    : r.take_whole<16>();
        for (int64_t l = 0; l < take; ++l)
          if (((bits >> l) & 1) != bit[i + l]) fail("mask read back in a range differs");
        if (take < 64 && (bits >> take) != 0) fail("mask reader returned bits past the count");
        i += take;
      }
    }
    ++cases;
  }
  return cases;
}

template <class K>
int check_isa() {
  int cases = 0;
  const Inputs in;
  const std::vector<float>&x = in.x, &dy = in.dy;
  std::vector<float> buffer(8192 + 64), out_cached(8192 + 64);

  for (int64_t offset = 0; offset < 16; ++offset) {
    for (int64_t len : {1, 5, 15, 16, 17, 31, 33, 64, 100, 255, 1000, 2049}) {
      // count 3 runs of len, and rows x width with a stride of width + 3.
      const int64_t rows = 3, width = len < 2048 ? len : 2047, stride = width + 3;
      auto run = [&](bn::Stores stores, float* out, int which) {
        switch (which) {
          case 0: K::runs_affine(x.data(), out, 3, len, in.affine, stores); break;
          case 1: K::runs_dx(dy.data(), x.data(), out, 3, len, in.dx_coeffs, stores); break;
          case 2: K::rows_affine(x.data(), out, rows, width, stride, in.rows_affine(), stores); break;
          default: K::rows_dx(dy.data(), x.data(), out, rows, width, stride, in.rows_dx(), stores); break;
        }
      };
      for (int which = 0; which < 4; ++which) {
        float* out = buffer.data() + offset;
        std::fill(buffer.begin(), buffer.end(), -7.0f);
        run(bn::Stores::kCached, out, which);
        out_cached = buffer;
        std::fill(buffer.begin(), buffer.end(), -7.0f);
        g_streamed.clear();
        g_stored.clear();
        run(bn::Stores::kStreaming, out, which);
        if (std::memcmp(buffer.data(), out_cached.data(), buffer.size() * sizeof(float)) != 0)
          fail("streaming and cached stores differ");
        check_lines("a streamed line is partial or also stored to");
        ++cases;
      }
    }
  }
  return cases + check_fused<K>(in);
}

}  // namespace

int main() {
  // Vectors must start 64-byte aligned for the offsets above to mean what they say.
  int cases = 0;
  cases += check_isa<bn::SimdKernels<Emulated<4, false>>>();   // NEON-sized
  cases += check_isa<bn::SimdKernels<Emulated<8, false>>>();   // AVX2-sized
  cases += check_isa<bn::SimdKernels<Emulated<16, true>>>();   // AVX-512-sized, aligned head
  cases += check_mask_ranges();
  std::printf("ok %d\n", cases);
  return 0;
}
