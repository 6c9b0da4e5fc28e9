// kernel_check: every ISA this CPU supports, through the real ops layer, against a float64
// reference with SPEC section 5's tolerances, plus bitwise determinism across thread counts.
// For machines without Node.js (the vitest suite covers the same ground where Node runs).
// Exit status 0 when everything passes.
#include <cmath>
#include <cstring>
#include <cstdio>
#include <string>
#include <vector>

#include "harness.h"

using harness::Shape;

namespace {

struct Reference {
  std::vector<double> y, mean, inv_std, dx, dgamma, dbeta, dgamma_scale, dbeta_scale;
};

Reference reference(const Shape& s, const std::vector<float>& x, const std::vector<float>& dy,
                    const std::vector<float>& gamma, const std::vector<float>& beta, double eps,
                    const std::vector<float>& save_mean, const std::vector<float>& save_inv_std) {
  const int64_t C = s.channels, M = s.outer * s.inner;
  Reference r{std::vector<double>(x.size()), std::vector<double>(C), std::vector<double>(C),
              std::vector<double>(x.size()), std::vector<double>(C), std::vector<double>(C),
              std::vector<double>(C), std::vector<double>(C)};
  auto each = [&](auto f) {
    for (int64_t o = 0; o < s.outer; ++o)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < s.inner; ++i) f((o * C + c) * s.inner + i, c);
  };
  std::vector<double> var(C);
  each([&](int64_t k, int64_t c) { r.mean[c] += x[k]; });
  for (auto& m : r.mean) m /= M;
  each([&](int64_t k, int64_t c) { var[c] += (x[k] - r.mean[c]) * (x[k] - r.mean[c]); });
  for (int64_t c = 0; c < C; ++c) r.inv_std[c] = 1.0 / std::sqrt(var[c] / M + eps);
  each([&](int64_t k, int64_t c) { r.y[k] = gamma[c] * (x[k] - r.mean[c]) * r.inv_std[c] + beta[c]; });
  // backward from the float32 saved statistics, as the kernels receive them
  auto xhat = [&](int64_t k, int64_t c) { return (x[k] - double(save_mean[c])) * save_inv_std[c]; };
  each([&](int64_t k, int64_t c) {
    r.dbeta[c] += dy[k];
    r.dgamma[c] += dy[k] * xhat(k, c);
    r.dbeta_scale[c] += std::fabs(dy[k]);
    r.dgamma_scale[c] += std::fabs(dy[k] * xhat(k, c));
  });
  each([&](int64_t k, int64_t c) {
    const double g = gamma[c] * double(save_inv_std[c]);
    r.dx[k] = g / M * (M * double(dy[k]) - r.dbeta[c] - xhat(k, c) * r.dgamma[c]);
  });
  return r;
}

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::printf("  FAIL %s\n", what.c_str());
  }
}

double elementwise_error(const std::vector<float>& a, const std::vector<double>& ref) {
  double worst = 0, scale = 1;
  for (size_t k = 0; k < ref.size(); ++k) {
    scale = std::fmax(scale, std::fabs(ref[k]));
    const double e = std::fabs(a[k] - ref[k]);
    if (!(e <= worst)) worst = e;
  }
  return worst / scale;  // SPEC: <= 2e-5
}

void check_case(const bn::KernelTable& k, const Shape& s, double mean_scale, unsigned seed) {
  const std::vector<float> x = harness::make_data(s, mean_scale, 1.0, seed);
  const std::vector<float> dy = harness::make_data(s, 0.0, 1.0, seed + 1);
  std::vector<float> gamma(s.channels), beta(s.channels);
  for (int64_t c = 0; c < s.channels; ++c) {
    gamma[c] = 0.5f + 0.1f * (c % 7);
    beta[c] = -0.3f + 0.05f * (c % 11);
  }
  std::vector<float> y(x.size()), save_mean(s.channels), save_inv_std(s.channels);
  const double eps = 1e-5;
  bn::TrainArgs t{x.data(), y.data(), gamma.data(), beta.data(), eps, 0.1, true,
                  nullptr,  nullptr,  save_mean.data(), save_inv_std.data()};
  const bn::Execution e{&k, 4, bn::default_streaming_bytes(4)};
  bn::forward_train(e, {s.outer, s.channels, s.inner}, t);
  std::vector<float> dx(x.size()), dgamma(s.channels), dbeta(s.channels);
  bn::BackwardArgs b{dy.data(), x.data(), dx.data(), gamma.data(), save_mean.data(),
                     save_inv_std.data(), false, dgamma.data(), dbeta.data()};
  bn::backward(e, {s.outer, s.channels, s.inner}, b);
  const Reference r = reference(s, x, dy, gamma, beta, eps, save_mean, save_inv_std);

  const std::string name = std::string(k.isa) + " " + s.name() + " mean*" + std::to_string(int(mean_scale));
  const double ey = elementwise_error(y, r.y), edx = elementwise_error(dx, r.dx);
  double emean = 0, einv = 0, edg = 0, edb = 0;
  for (int64_t c = 0; c < s.channels; ++c) {
    emean = std::fmax(emean, std::fabs(save_mean[c] - r.mean[c]) / (std::fabs(r.mean[c]) + 1e-1 / r.inv_std[c]));
    einv = std::fmax(einv, std::fabs(save_inv_std[c] - r.inv_std[c]) / r.inv_std[c]);
    edg = std::fmax(edg, std::fabs(dgamma[c] - r.dgamma[c]) / (1e-5 * r.dgamma_scale[c] + 1e-6));
    edb = std::fmax(edb, std::fabs(dbeta[c] - r.dbeta[c]) / (1e-5 * r.dbeta_scale[c] + 1e-6));
  }
  std::printf("%-40s y %.1e  dx %.1e  mean %.1e  invStd %.1e  dgamma %.2f  dbeta %.2f (of bound)\n",
              name.c_str(), ey, edx, emean, einv, edg, edb);
  expect(ey <= 2e-5, name + " y");
  expect(edx <= 2e-5, name + " dx");
  expect(emean <= 1e-5, name + " saveMean");
  expect(einv <= 1e-5, name + " saveInvStd");
  expect(edg <= 1.0, name + " dgamma");
  expect(edb <= 1.0, name + " dbeta");
}

// Outputs at `threads` threads, concatenated, for bitwise comparison. `streaming_bytes` 0
// streams every output, INT64_MAX none.
std::vector<float> outputs(const bn::KernelTable& k, const Shape& s, int threads,
                           int64_t streaming_bytes = INT64_MAX) {
  const bn::Execution e{&k, threads, streaming_bytes};
  const std::vector<float> x = harness::make_data(s, 3.0, 2.0, 7), dy = harness::make_data(s, 0, 1, 8);
  std::vector<float> y(x.size()), dx(x.size()), sm(s.channels), si(s.channels), dg(s.channels), db(s.channels);
  bn::forward_train(e, {s.outer, s.channels, s.inner},
                    bn::TrainArgs{x.data(), y.data(), nullptr, nullptr, 1e-5, 0.1, true, nullptr, nullptr, sm.data(), si.data()});
  bn::backward(e, {s.outer, s.channels, s.inner},
               bn::BackwardArgs{dy.data(), x.data(), dx.data(), nullptr, sm.data(), si.data(), false, dg.data(), db.data()});
  std::vector<float> all = y;
  for (const auto* v : {&dx, &sm, &si, &dg, &db}) all.insert(all.end(), v->begin(), v->end());
  return all;
}

}  // namespace

int main() {
  const std::vector<Shape> shapes = {
      {2, 3, 1},      {1000, 5, 1},   {7, 17, 15},   {3, 16, 49},   {6, 10, 100},
      {4, 9, 1500},   {4, 3, 250000}, {33, 19, 2049}, {1, 1, 1000003}, {5, 4100, 1},
      {70, 3, 63},    {9, 5, 64},     {2, 37, 9},    {4096, 24, 1}, {32, 64, 3136},
      {100352, 64, 1}, {128, 512, 49}, {64, 256, 196}, {3, 1, 7}};
  std::printf("supported ISAs: %s\n", bn::supported_isas().c_str());
  std::string list = bn::supported_isas() + ",";
  for (size_t at = 0; at < list.size();) {
    const size_t comma = list.find(',', at);
    const bn::KernelTable& k = bn::select_kernels(list.substr(at, comma - at));
    at = comma + 1;
    std::printf("== %s\n", k.isa);
    unsigned seed = 1;
    for (const Shape& s : shapes) {
      check_case(k, s, 3.0, seed++);
      if (s.size() >= 1000) check_case(k, s, 1e4, seed++);  // mean = 10^4 std
    }
    for (const Shape& s : std::vector<Shape>{{8, 64, 1024}, {16, 3, 16384}, {16384, 40, 1}, {64, 20, 196}, {64, 20, 49}}) {
      const std::vector<float> base = outputs(k, s, 1);
      for (int threads : {2, 3, 4, 7, 8, 16}) {
        for (int64_t streaming : {INT64_MAX, int64_t{0}}) {
          const std::vector<float> other = outputs(k, s, threads, streaming);
          bool same = true;
          for (size_t i = 0; i < base.size(); ++i) same &= std::memcmp(&base[i], &other[i], 4) == 0;
          expect(same, std::string(k.isa) + " " + s.name() + " bitwise at " + std::to_string(threads) +
                           " threads" + (streaming ? "" : ", streaming stores"));
        }
      }
      std::printf("%-40s determinism 1..16 threads, cached and streaming stores, checked\n",
                  (std::string(k.isa) + " " + s.name()).c_str());
    }
  }
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
