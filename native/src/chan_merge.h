// The moments of a list of parts merged by Chan's rule in list order, exactly as mergeMoments
// (lib/synchronized.ts) does it, so that a step synchronized inside the kernels and one split
// around the collective give the same bits:
//   n = n_a + n_b;  delta = mean_b - mean_a;  mean = mean_a + delta n_b / n;
//   M2 = M2_a + M2_b + delta^2 n_a n_b / n
//
// Every product is rounded on its own, as JavaScript rounds it. Left to themselves, compilers
// fuse `mean + delta * w` into one fused multiply-add (one rounding) wherever the target has one:
// GCC on arm64 at its default -ffp-contract=fast, or an x86-64 build with -mfma. The fused
// merge's bits differed from mergeMoments' in 613 of 1000 random merges of 4 parts on arm64.
#pragma once

namespace bn {

// a * b, rounded to a double before it is used: the volatile store keeps the compiler from
// fusing it into an add that follows.
inline double rounded_product(double a, double b) {
  volatile double product = a * b;
  return product;
}

struct ChanMerge {
  double n = 0.0, mean = 0.0, m2 = 0.0;

  void add(double part_n, double part_mean, double part_m2) {
    if (part_n == 0.0) return;
    if (n == 0.0) {
      n = part_n, mean = part_mean, m2 = part_m2;
      return;
    }
    const double total = n + part_n;
    const double weight_new = part_n / total, weight_cross = (n * part_n) / total;
    const double delta = part_mean - mean;
    mean += rounded_product(delta, weight_new);
    m2 += part_m2 + rounded_product(delta * delta, weight_cross);
    n = total;
  }
};

}  // namespace bn
