// Shared pieces of the stand-alone native programs (kernel_check, scaling): they link the
// kernels and ops without N-API, so they run on machines that have no Node.js.
#pragma once
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../../native/src/batchnorm_ops.h"
#include "../../native/src/dispatch.h"

namespace harness {

struct Shape {
  int64_t outer, channels, inner;
  int64_t size() const { return outer * channels * inner; }
  std::string name() const {
    return std::to_string(outer) + "x" + std::to_string(channels) + "x" + std::to_string(inner);
  }
};

// x[(o*C + c)*inner + i] = mean_c + std_c * N(0, 1), with per-channel mean and std.
inline std::vector<float> make_data(const Shape& s, double mean_scale, double std_scale,
                                    unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> mean(s.channels), stdev(s.channels);
  for (int64_t c = 0; c < s.channels; ++c) {
    mean[c] = mean_scale * (c % 2 ? 1 : -1) * (1 + c % 3);
    stdev[c] = std_scale * (0.5 + (c % 5) * 0.25);
  }
  std::vector<float> x(s.size());
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t c = 0; c < s.channels; ++c)
      for (int64_t i = 0; i < s.inner; ++i)
        x[(o * s.channels + c) * s.inner + i] = static_cast<float>(mean[c] + stdev[c] * normal(rng));
  return x;
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace harness
