// Synchronized statistics between the replicas of a worker group inside the kernels (SPEC
// section 8): each replica hands over a channel's numbers as soon as its reduce has them and
// takes the others' for that channel, so a synchronized step reads its data as often as an
// unsynchronized one and no replica waits for a whole pass. lib/collective/worker-group.ts owns
// the shared memory; lib/layer/synchronized.ts says when to use it.
//
// Per channel c, in shared memory:
//   arrivals[c]                                 how many (replica, round) pairs have arrived
//   slots[((c * 2 + parity) * size + rank) * 4]  a replica's 3 numbers for one round, and its op
// and per replica, in its own memory, rounds[c]: how many rounds of channel c it has run. Every
// replica runs the same rounds in the same order, so round r of channel c is complete when
// arrivals[c] reaches (r + 1) * size (the counter wraps, and so does the target). Two parities
// are enough: a replica writes round r + 2's numbers only after every replica arrived at round
// r + 1, that is, after each read round r's.
//
// Deadlock: each thread of an op gathers its channels in increasing order, publishes a channel
// before it gathers it, and waits for nothing else in between, so the lowest channel anyone
// waits for is always on its way.
//
// Every replica must run the same op (forward or backward, over as many channels): one running
// another layer, or a step behind, would hand over numbers that do not belong together, and one
// with fewer channels would finish while the others wait. So each publishes its op beside its
// numbers, and a gather that finds another op there breaks the group: every replica sees the
// same slots, so all fail alike.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace bn {

// The group's memory as this replica sees it, and how long it waits.
struct ExchangeMemory {
  double* slots;
  int32_t* arrivals;
  int32_t* rounds;
  int32_t* broken;       // the group's word saying why it broke (0: it has not)
  int32_t timeout_code;   // what this replica writes there when it gives up waiting
  int32_t mismatch_code;  // what it writes there when a replica runs another op
  int rank, size;
  double timeout_ms;
  double op;  // the op this replica runs (ChannelExchange::op_id)
};

class ChannelExchange {
 public:
  static constexpr int kValues = 3;             // a replica's numbers of one channel
  static constexpr int kFields = kValues + 1;   // and its op
  static constexpr double kForeverMs = 1e12;  // longer timeouts (Infinity included) never expire
  // (binding.cpp reports 3 for too few values per channel over every replica.)
  enum Status : int { kOk = 0, kTimedOut = 1, kBroken = 2, kMismatch = 4 };

  // An op over `channels` channels, forward or backward, as a number every replica compares.
  static double op_id(bool backward, int64_t channels) {
    return 2.0 * static_cast<double>(channels) + (backward ? 1.0 : 0.0);
  }

  explicit ChannelExchange(const ExchangeMemory& m) : m_(m) {}

  // Publishes `mine` as this replica's numbers of channel c for its next round. Publishing a
  // range of channels before gathering the first lets the replicas' rounds of the range overlap.
  void publish(int64_t c, const double (&mine)[kValues]) {
    if (status() != kOk) return;
    double* const slots = round_slots(c) + m_.rank * kFields;
    for (int i = 0; i < kValues; ++i) slots[i] = mine[i];
    slots[kValues] = m_.op;
    // Release: the numbers are visible to whoever sees the arrival.
    __atomic_add_fetch(m_.arrivals + c, 1, __ATOMIC_RELEASE);
  }

  // Waits until every replica has published channel c's round, then calls each(rank, values)
  // for every replica's numbers in rank order, and ends the round. False (and nothing called) when
  // the group broke, a wait timed out or a replica runs another op, now or earlier in this op.
  template <class Each>
  bool gather(int64_t c, Each&& each) {
    if (status() != kOk) return false;
    const uint32_t round = static_cast<uint32_t>(m_.rounds[c]);
    if (!wait_for(c, (round + 1) * static_cast<uint32_t>(m_.size))) return false;
    const double* const slots = round_slots(c);
    for (int k = 0; k < m_.size; ++k)
      if (slots[k * kFields + kValues] != m_.op) return mismatch(c, k, slots[k * kFields + kValues]);
    for (int k = 0; k < m_.size; ++k) each(k, slots + k * kFields);
    m_.rounds[c] = static_cast<int32_t>(round + 1);
    return true;
  }

  int rank() const { return m_.rank; }
  double op() const { return m_.op; }
  Status status() const { return static_cast<Status>(status_.load(std::memory_order_relaxed)); }
  // The channel whose wait failed (meaningful when status() is not kOk).
  int64_t failed_channel() const { return failed_channel_.load(std::memory_order_relaxed); }
  // With kMismatch: the first replica found running another op, and that op.
  int mismatched_rank() const { return mismatched_rank_.load(); }
  double mismatched_op() const { return mismatched_op_.load(); }

 private:
  // Spins a little (the others are usually microseconds behind), then yields the core, which a
  // replica's thread may share with another replica's.
  bool wait_for(int64_t c, uint32_t target) {
    constexpr int kSpins = 256;
    using Clock = std::chrono::steady_clock;
    const Clock::time_point deadline =
        m_.timeout_ms > kForeverMs
            ? Clock::time_point::max()
            : Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double, std::milli>(m_.timeout_ms));
    for (int64_t tries = 0;; ++tries) {
      // Broken first: a replica that arrives after another gave up fails too, as allReduceSum
      // does, even where every replica's numbers of this round are there.
      if (__atomic_load_n(m_.broken, __ATOMIC_ACQUIRE) != 0) return fail(kBroken, c);
      const uint32_t seen = static_cast<uint32_t>(__atomic_load_n(m_.arrivals + c, __ATOMIC_ACQUIRE));
      if (static_cast<int32_t>(seen - target) >= 0) return true;
      if (status() != kOk) return false;
      if (tries < kSpins) {
        relax();
      } else {
        std::this_thread::yield();
        if (tries % 64 == 0 && Clock::now() > deadline) {
          // Tell the others at once; lib/ then wakes any replica sleeping in JavaScript.
          break_group(m_.timeout_code);
          return fail(kTimedOut, c);
        }
      }
    }
  }

  // Marks the group broken with `code`, unless it already is (the first reason wins).
  void break_group(int32_t code) {
    int32_t none = 0;
    __atomic_compare_exchange_n(m_.broken, &none, code, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
  }

  // Fails the op (the first failure wins, with its channel); true for the call that did.
  bool first_failure(Status why, int64_t c) {
    int expected = kOk;
    if (!status_.compare_exchange_strong(expected, why)) return false;
    failed_channel_.store(c);
    return true;
  }

  bool fail(Status why, int64_t c) {
    first_failure(why, c);
    return false;
  }

  // Replica `k` published op `theirs` for channel c: breaks the group (waking replicas that wait
  // elsewhere) and fails this op.
  bool mismatch(int64_t c, int k, double theirs) {
    break_group(m_.mismatch_code);
    if (first_failure(kMismatch, c)) {
      mismatched_rank_.store(k);
      mismatched_op_.store(theirs);
    }
    return false;
  }

  static void relax() {
#if defined(__x86_64__) || defined(_M_X64)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  // The slots of channel c's current round (its parity).
  double* round_slots(int64_t c) const {
    return m_.slots + (c * 2 + (m_.rounds[c] & 1)) * m_.size * kFields;
  }

  ExchangeMemory m_;
  std::atomic<int> status_{kOk};
  std::atomic<int64_t> failed_channel_{-1};
  std::atomic<int> mismatched_rank_{-1};
  std::atomic<double> mismatched_op_{0.0};
};

}  // namespace bn
