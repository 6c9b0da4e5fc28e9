// scaling: the benchmark's shapes and ops at 1, 2, 4, ... threads on the best ISA, beside the
// STREAM triad at the same thread counts. Prints a Markdown table. For thread-scaling runs on
// machines with many cores and no Node.js; `npm run bench` is the main benchmark.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "../../native/src/stream_probe.h"
#include "harness.h"

using harness::Shape;

namespace {

struct Case {
  std::string name;
  Shape shape;
};

// The dimensions N x C x spatial, as (outer, C, inner) for NCHW and NHWC.
std::vector<Case> cases() {
  std::vector<Case> out = {{"256x1024-nc", {256, 1024, 1}}, {"4096x1024-nc", {4096, 1024, 1}}};
  const int64_t image[][4] = {{32, 64, 56, 56}, {64, 256, 14, 14}, {128, 512, 7, 7}, {16, 32, 112, 112}, {8, 64, 224, 224}};
  for (const auto& d : image) {
    const std::string dims = std::to_string(d[0]) + "x" + std::to_string(d[1]) + "x" + std::to_string(d[2]) + "x" + std::to_string(d[3]);
    out.push_back({dims + "-nchw", {d[0], d[1], d[2] * d[3]}});
    out.push_back({dims + "-nhwc", {d[0] * d[2] * d[3], d[1], 1}});
  }
  return out;
}

// Median seconds of fn over at least 5 runs and 0.3 s (after one warm-up).
template <class Fn>
double median_seconds(Fn&& fn) {
  fn();
  std::vector<double> t;
  double total = 0;
  while (t.size() < 5 || (total < 0.3 && t.size() < 200)) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(harness::seconds_since(t0));
    total += t.back();
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const bn::KernelTable& k = bn::select_kernels(argc > 1 ? argv[1] : "");
  const int cores = omp_get_num_procs();
  std::vector<int> threads;
  for (int t = 1; t < cores; t *= 2) threads.push_back(t);
  threads.push_back(cores);
  std::printf("ISA %s, %d cores\n\n| threads | DRAM triad GB/s | copy GB/s |\n|---|---|---|\n", k.isa, cores);
  std::vector<double> triad;
  for (int t : threads) {
    triad.push_back(bn::stream_bandwidth(bn::StreamKernel::kTriad, 64 << 20, t, 5));
    std::printf("| %d | %.1f | %.1f |\n", t, triad.back(), bn::stream_bandwidth(bn::StreamKernel::kCopy, 64 << 20, t, 5));
  }
  std::printf("\nms (GB/s under the 12/8/20 B/element model, %% of triad) per thread count\n\n| case | op |");
  for (int t : threads) std::printf(" %dT |", t);
  std::printf("\n|---|---|");
  for (size_t i = 0; i < threads.size(); ++i) std::printf("---|");
  std::printf("\n");
  for (const Case& c : cases()) {
    const Shape& s = c.shape;
    const bn::Geometry g{s.outer, s.channels, s.inner};
    const std::vector<float> x = harness::make_data(s, 0.5, 2.0, 1), dy = harness::make_data(s, 0, 1, 2);
    std::vector<float> y(x.size()), dx(x.size()), gamma(s.channels, 1.1f), beta(s.channels, 0.1f);
    std::vector<float> sm(s.channels), si(s.channels), rm(s.channels, 0.5f), rv(s.channels, 2.0f), dg(s.channels), db(s.channels);
    const bn::TrainArgs train{x.data(), y.data(), gamma.data(), beta.data(), 1e-5, 0.1, true, nullptr, nullptr, sm.data(), si.data()};
    const bn::InferenceArgs infer{x.data(), y.data(), gamma.data(), beta.data(), 1e-5, rm.data(), rv.data()};
    const bn::BackwardArgs back{dy.data(), x.data(), dx.data(), gamma.data(), sm.data(), si.data(), false, dg.data(), db.data()};
    struct Op { const char* name; double bytes; };
    for (const Op& op : {Op{"forwardTrain", 12}, Op{"forwardInference", 8}, Op{"backward", 20}}) {
      std::printf("| %s | %s |", c.name.c_str(), op.name);
      for (size_t i = 0; i < threads.size(); ++i) {
        const int t = threads[i];
        const bn::Execution e{&k, t, bn::default_streaming_bytes(t)};
        const double sec = median_seconds([&] {
          if (op.name[7] == 'T') bn::forward_train(e, g, train);
          else if (op.name[0] == 'f') bn::forward_inference(e, g, infer);
          else bn::backward(e, g, back);
        });
        const double gbps = op.bytes * s.size() / sec / 1e9;
        std::printf(" %.3g (%.0f, %.0f%%) |", sec * 1e3, gbps, 100 * gbps / triad[i]);
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  return 0;
}
