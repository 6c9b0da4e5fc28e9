// The SIMD kernels' store logic on plain-C++ vectors of 4, 8 and 16 floats, so that the paths of
// ISAs this machine may lack (AVX-512's aligned head, 16-float streaming) run everywhere. The
// emulated stream() fails on any address that is not 64-byte aligned and records every line it
// writes; the test then checks that
//   - streaming and cached stores give the same bits, for every offset and many lengths;
//   - streamed lines are whole: each one gets exactly 64 bytes of streaming stores and no
//     ordinary store.
// Built and run by test/emulated-kernels.test.ts; prints "ok <cases>" or the first failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
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
  static void fence() {}
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
};

// Every line touched by a streaming run must be whole (64 bytes streamed) and never stored to.
void check_lines(const char* what) {
  for (const auto& [line, bytes] : g_streamed) {
    if (bytes != 64) fail(what);
    if (g_stored.count(line)) fail(what);
  }
}

template <class K>
int check_isa() {
  int cases = 0;
  std::vector<float> buffer(8192 + 64), x(8192), dy(8192), out_cached(8192 + 64);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = std::sin(0.37f * i) * 3.0f + 1.0f;
    dy[i] = std::cos(0.11f * i);
  }
  const bn::Affine affine[3] = {{0.5f, 1.5f, -0.25f}, {1.0f, 0.75f, 0.5f}, {-0.5f, 2.0f, 0.0f}};
  const bn::DxCoeffs dx_coeffs[3] = {{0.5f, 1.5f, -0.25f, 0.1f}, {1.0f, 0.75f, 0.5f, -0.2f},
                                     {-0.5f, 2.0f, 0.0f, 0.3f}};
  std::vector<float> columns(4 * 2048);
  for (size_t i = 0; i < columns.size(); ++i) columns[i] = 0.25f + 0.001f * i;
  const float* col = columns.data();
  const bn::RowsAffine rows_affine{col, col + 2048, col + 4096};
  const bn::RowsDxCoeffs rows_dx{col, col + 2048, col + 4096, col + 6144};

  for (int64_t offset = 0; offset < 16; ++offset) {
    for (int64_t len : {1, 5, 15, 16, 17, 31, 33, 64, 100, 255, 1000, 2049}) {
      // count 3 runs of len, and rows x width with a stride of width + 3.
      const int64_t rows = 3, width = len < 2048 ? len : 2047, stride = width + 3;
      auto run = [&](bn::Stores stores, float* out, int which) {
        switch (which) {
          case 0: K::runs_affine(x.data(), out, 3, len, affine, stores); break;
          case 1: K::runs_dx(dy.data(), x.data(), out, 3, len, dx_coeffs, stores); break;
          case 2: K::rows_affine(x.data(), out, rows, width, stride, rows_affine, stores); break;
          default: K::rows_dx(dy.data(), x.data(), out, rows, width, stride, rows_dx, stores); break;
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
  return cases;
}

}  // namespace

int main() {
  // Vectors must start 64-byte aligned for the offsets above to mean what they say.
  int cases = 0;
  cases += check_isa<bn::SimdKernels<Emulated<4, false>>>();   // NEON-sized
  cases += check_isa<bn::SimdKernels<Emulated<8, false>>>();   // AVX2-sized
  cases += check_isa<bn::SimdKernels<Emulated<16, true>>>();   // AVX-512-sized, aligned head
  std::printf("ok %d\n", cases);
  return 0;
}
