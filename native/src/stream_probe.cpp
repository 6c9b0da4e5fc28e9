#include "stream_probe.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

namespace bn {

double stream_bandwidth(StreamKernel kernel, int64_t floats, int threads, int reps) {
  std::unique_ptr<float[]> a(new float[floats]), b(new float[floats]), c(new float[floats]);
  float* const pa = a.get();
  const float* const pb = b.get();
  const float* const pc = c.get();
  // First touch with the same static partition as the timed loops, so pages sit near the
  // threads that use them, and no timed pass pays for page faults.
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < floats; ++i) a[i] = b[i] = c[i] = 1.0f;

  const float scalar = 3.0f;
  std::vector<double> seconds;
  for (int r = 0; r <= reps; ++r) {  // pass 0 is a warm-up
    const auto start = std::chrono::steady_clock::now();
    if (kernel == StreamKernel::kCopy) {
#pragma omp parallel for num_threads(threads) schedule(static)
      for (int64_t i = 0; i < floats; ++i) pa[i] = pb[i];
    } else {
#pragma omp parallel for num_threads(threads) schedule(static)
      for (int64_t i = 0; i < floats; ++i) pa[i] = pb[i] + scalar * pc[i];
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    if (r > 0) seconds.push_back(took.count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double bytes = static_cast<double>(floats) * (kernel == StreamKernel::kCopy ? 8.0 : 12.0);
  return bytes / seconds[seconds.size() / 2] / 1e9;
}

}  // namespace bn
