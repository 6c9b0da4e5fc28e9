// native/src/channel_exchange.h between threads standing for a worker group's replicas: each
// runs bn::forward_train and bn::backward on its shard of one batch (the scalar kernels, no
// OpenMP, so that ThreadSanitizer sees every access), exchanging through one shared memory, for
// several steps and geometries (the runs layout's channel-by-channel and phase paths, the rows
// layout, empty shards). Checks: every replica ends each step with the same bits of the
// statistics and dx coefficients' inputs, which match forward_train on the whole batch within
// float tolerance; a replica that stops arriving makes the others time out, and one that runs
// another op (fewer channels) makes every replica fail, each leaving its running statistics
// alone. Built by test/native-programs.test.ts with -fsanitize=thread;
// prints "ok <checks>" or the first failure.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "../../native/src/batchnorm_ops.h"

namespace {

int checks = 0;
bool failed = false;

void check(bool ok, const char* what, int step) {
  ++checks;
  if (!ok && !failed) {
    std::printf("FAILED: %s (step %d)\n", what, step);
    failed = true;
  }
}

// The group's memory for C channels and `size` replicas.
struct Group {
  int size;
  std::vector<double> slots;
  std::vector<int32_t> arrivals;
  int32_t broken = 0;
  Group(int n, int64_t C) : size(n), slots(C * 2 * n * bn::ChannelExchange::kFields), arrivals(C) {}
};

// One replica's shard and everything a step writes.
struct Replica {
  std::vector<float> x, dy, y, dx, mean, inv_std, running_mean, running_var, dgamma, dbeta;
  std::vector<int32_t> rounds;
  int status = 0;
  int64_t count = -1;
};

// The exchange of replica `rank`'s forward or backward over C channels (lib/'s break codes).
bn::ExchangeMemory memory_of(Group& g, Replica& r, int rank, double timeout_ms, bool backward,
                             int64_t C) {
  return {g.slots.data(), g.arrivals.data(), r.rounds.data(), &g.broken,
          4 * (rank + 2) + 1, 4 * (rank + 2) + 3, rank, g.size, timeout_ms,
          bn::ChannelExchange::op_id(backward, C)};
}

// A step of one replica: forward_train, then backward, both exchanging.
void train_step(const bn::Execution& e, Group& g, Replica& r, int rank, bn::Geometry shard,
                double timeout_ms) {
  bn::Synchronized forward(memory_of(g, r, rank, timeout_ms, false, shard.channels));
  bn::TrainArgs t{};
  t.x = r.x.data();
  t.y = r.y.data();
  t.eps = 1e-5;
  t.momentum = 0.1;
  t.unbiased = true;
  t.running_mean = r.running_mean.data();
  t.running_var = r.running_var.data();
  t.save_mean = r.mean.data();
  t.save_inv_std = r.inv_std.data();
  t.sync = &forward;
  bn::forward_train(e, shard, t);
  r.count = forward.total_count;
  r.status = forward.exchange.status();
  if (forward.failed()) return;
  bn::Synchronized backward(memory_of(g, r, rank, timeout_ms, true, shard.channels));
  bn::BackwardArgs b{};
  b.dy = r.dy.data();
  b.x = r.x.data();
  b.dx = r.dx.data();
  b.save_mean = r.mean.data();
  b.save_inv_std = r.inv_std.data();
  b.dgamma = r.dgamma.data();
  b.dbeta = r.dbeta.data();
  b.total_count = r.count;
  b.sync = &backward;
  bn::backward(e, shard, b);
  r.status = backward.exchange.status();
}

float value(int64_t i, int step) { return std::sin(0.37f * i + step) * (1 + i % 7) + (i * 13) % 5; }

// What goes wrong with the last replica at the step `fault_at` of run().
enum class Fault { kStops, kFewerChannels };

// `rows` per replica of an (N, C, inner) batch; at step `fault_at` (-1: none), `fault`.
void run(bn::Geometry whole, const std::vector<int64_t>& rows, int fault_at = -1,
         Fault fault = Fault::kStops) {
  const bn::Execution e{&bn::kScalarKernels, 1, INT64_MAX};
  const int64_t C = whole.channels, per_row = C * whole.inner;
  Group g(static_cast<int>(rows.size()), C);
  std::vector<Replica> replicas(rows.size());
  for (Replica& r : replicas) {
    r.running_mean.assign(C, 0.0f);
    r.running_var.assign(C, 1.0f);
    r.rounds.assign(C, 0);
    for (auto* v : {&r.mean, &r.inv_std, &r.dgamma, &r.dbeta}) v->assign(C, 0.0f);
  }
  for (int step = 0; step < 3; ++step) {
    std::vector<float> all_x(whole.size());
    for (int64_t i = 0; i < whole.size(); ++i) all_x[i] = value(i, step);
    int64_t at = 0;
    for (size_t k = 0; k < rows.size(); ++k) {
      Replica& r = replicas[k];
      r.x.assign(all_x.begin() + at * per_row, all_x.begin() + (at + rows[k]) * per_row);
      r.dy.assign(r.x.size(), 0.0f);
      for (size_t i = 0; i < r.dy.size(); ++i) r.dy[i] = std::cos(0.11f * (at * per_row + i));
      r.y.assign(r.x.size(), 0.0f);
      r.dx.assign(r.x.size(), 0.0f);
      at += rows[k];
    }
    const std::vector<float> running_before = replicas[0].running_var;
    std::vector<std::thread> threads;
    const bool faulty = step == fault_at;
    for (size_t k = 0; k < rows.size(); ++k) {
      const bool last = k + 1 == rows.size();
      if (faulty && last && fault == Fault::kStops) continue;
      const int64_t channels = faulty && last && fault == Fault::kFewerChannels ? C - 1 : C;
      threads.emplace_back(train_step, std::cref(e), std::ref(g), std::ref(replicas[k]),
                           static_cast<int>(k), bn::Geometry{rows[k], channels, whole.inner},
                           faulty ? 200.0 : 60000.0);
    }
    for (std::thread& t : threads) t.join();
    if (faulty) {
      const size_t ran = fault == Fault::kStops ? rows.size() - 1 : rows.size();
      for (size_t k = 0; k < ran; ++k) {
        check(replicas[k].status != bn::ChannelExchange::kOk, "the others fail (every replica, for another op)", step);
        check(replicas[k].running_var == running_before, "a failed step keeps the running statistics", step);
      }
      // A replica that found the other op broke the group for it (memory_of's codes); one that
      // came to the exchange after that fails as broken.
      if (fault == Fault::kFewerChannels) check(g.broken % 4 == 3, "the group broken for a mismatch", step);
      return;
    }
    // The whole batch in one call, for the statistics.
    std::vector<float> y(whole.size()), mean(C), inv_std(C), rm(C, 0.0f), rv(C, 1.0f);
    bn::TrainArgs t{};
    t.x = all_x.data();
    t.y = y.data();
    t.eps = 1e-5;
    t.momentum = 0.1;
    t.save_mean = mean.data();
    t.save_inv_std = inv_std.data();
    bn::forward_train(e, whole, t);
    for (const Replica& r : replicas) {
      check(r.status == bn::ChannelExchange::kOk && r.count == whole.per_channel(), "every replica synchronized", step);
      check(std::memcmp(r.mean.data(), replicas[0].mean.data(), C * sizeof(float)) == 0 &&
                std::memcmp(r.inv_std.data(), replicas[0].inv_std.data(), C * sizeof(float)) == 0 &&
                r.running_var == replicas[0].running_var,
            "the same bits on every replica", step);
      for (int64_t c = 0; c < C; ++c)
        check(std::fabs(r.mean[c] - mean[c]) <= 1e-5f * (1 + std::fabs(mean[c])) &&
                  std::fabs(r.inv_std[c] - inv_std[c]) <= 1e-5f * inv_std[c],
              "the statistics of the whole batch", step);
    }
  }
}

}  // namespace

int main() {
  run({8, 3, 1100}, {3, 5});      // long runs: channel by channel
  run({6, 4, 200}, {1, 0, 3, 2});  // shorter runs: phase by phase, an empty shard
  run({40, 5, 4}, {17, 23});       // the rows layout
  run({6, 3, 1100}, {2, 2, 2}, 1, Fault::kStops);          // the last replica stops at step 1
  run({6, 3, 1100}, {2, 2, 2}, 1, Fault::kFewerChannels);  // ... or runs 2 channels of 3
  if (failed) return 1;
  std::printf("ok %d\n", checks);
  return 0;
}
