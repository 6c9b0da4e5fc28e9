// The bit-packed ReLU mask of SPEC section 7: bit (i & 7) of byte (i >> 3) is 1 iff y[i] > 0,
// i the element's index in the whole tensor. Kernels write and read it over contiguous ranges
// of elements, in order, a few bits at a time (one bit per lane of a vector; reads also up to 64
// at once).
//
// Ranges start at any element (a 14x14 NCHW run is 196 floats; a rows task starts mid-row), so
// the first and last byte of a range may also hold bits of a neighbouring range that another
// thread writes at the same time. The writer stores the bytes wholly inside its range plainly
// and merges the two edge bytes with atomic operations that change only its own bits: the mask
// is the same whatever the threads and their order, and no byte needs zeroing first.
//
// Internal linkage, as in kernels_simd.h: each ISA's translation unit gets its own copy.
#pragma once
#include <cstdint>
#include <cstring>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "mask bytes are stored as little-endian words");

namespace bn {
namespace {

inline uint64_t low_bits(int64_t n) { return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1; }

// Writes the bits of elements [first, first + n) of `mask`, in order.
class MaskWriter {
 public:
  // How far ahead of its stores a writer asks for the mask's cache lines (see keep_ahead).
  static constexpr int64_t kPrefetchBytes = 512;

  MaskWriter(uint8_t* mask, int64_t first)
      : out_(mask + (first >> 3)),
        pending_(0),
        count_(static_cast<int>(first & 7)),
        foreign_(static_cast<uint8_t>(low_bits(first & 7))) {}

  // Lets keep_ahead() ask for the mask lines of the writer's next `n` elements, and no others
  // (another thread may be writing the lines past them). Without a call, nothing is requested.
  void prefetch_within(int64_t n) {
    prefetch_end_ = reinterpret_cast<uintptr_t>(out_) + static_cast<uintptr_t>((count_ + n + 7) >> 3);
    requested_ = line_of(reinterpret_cast<uintptr_t>(out_));
  }

  // Asks for the cache lines of the next `n` elements' bits and of kPrefetchBytes beyond them,
  // within what prefetch_within() allows, before they are stored; the runs kernels call it once per
  // run. A mask store that misses the cache can hold up the stores behind it (they leave the core
  // in order), the output's streaming stores too: an NCHW forwardTrain with ReLU on [32, 64, 56,
  // 56] took 1.05-1.24x the plain call without these requests and 1.04-1.16x with them, against
  // 1.00-1.03x for a build that stored no mask (one thread; a C++ loop over the op, alternating
  // builds). Asked once per run rather than at each stored word: the per-vector work is what
  // the mask costs (push_whole).
  void keep_ahead(int64_t n) {
    const uintptr_t ahead = reinterpret_cast<uintptr_t>(out_) +
                            static_cast<uintptr_t>(((count_ + n + 7) >> 3) + kPrefetchBytes);
    const uintptr_t end = ahead < prefetch_end_ ? ahead : prefetch_end_;
    for (; requested_ < end; requested_ += kLineBytes) request(requested_);
  }

  // Appends the low `n` bits of `bits` (bit l: lane l), n <= 32.
  void push(uint32_t bits, int64_t n) {
    pending_ |= (bits & low_bits(n)) << count_;
    count_ += static_cast<int>(n);
    if (count_ >= 32) write_word();
  }

  // push(bits, N) for a whole vector's N bits. Where N is a multiple of 8, once the range's first
  // byte is merged, fewer than 8 bits wait, and every push then fills N/8 whole bytes: a shift,
  // an or and one store, with no count to keep. The mask's cost is this arithmetic more than its
  // stores (a build that computed the bits but stored none was no faster); with push() alone, an
  // NCHW forwardTrain with ReLU on [32, 64, 56, 56] took 1.06-1.10x the plain call, with this
  // 1.01-1.06x (a loop over the public call, alternating builds, 1 and 2 threads).
  template <int N>
  void push_whole(uint32_t bits) {
    if constexpr (N % 8 != 0) {
      push(bits, N);
    } else {
      if (foreign_ != 0) return push(bits, N);  // until write_word merges the first byte
      if (count_ >= 8) write_bytes();
      pending_ |= (bits & low_bits(N)) << count_;
      std::memcpy(out_, &pending_, N / 8);
      out_ += N / 8;
      pending_ >>= N;
    }
  }

  // Writes what is left; the last byte is merged when the range ends inside it.
  void finish() {
    for (; count_ > 0; count_ -= 8, pending_ >>= 8, ++out_) {
      const uint8_t foreign = foreign_ | static_cast<uint8_t>(~low_bits(count_ < 8 ? count_ : 8));
      if (foreign == 0)
        *out_ = static_cast<uint8_t>(pending_);
      else if (foreign != 0xFF)
        merge(out_, static_cast<uint8_t>(pending_), foreign);
      foreign_ = 0;
    }
  }

 private:
  static constexpr uintptr_t kLineBytes = 64;
  static uintptr_t line_of(uintptr_t address) { return address & ~(kLineBytes - 1); }
  // Asks for the cache line at `line` for writing, to be kept in every cache level.
  static void request(uintptr_t line) { __builtin_prefetch(reinterpret_cast<const void*>(line), 1, 3); }

  // Sets the bits of *p outside `foreign` to those of `own` (whose foreign bits are 0).
  static void merge(uint8_t* p, uint8_t own, uint8_t foreign) {
    __atomic_fetch_and(p, static_cast<uint8_t>(own | foreign), __ATOMIC_RELAXED);
    __atomic_fetch_or(p, own, __ATOMIC_RELAXED);
  }

  void write_word() {
    const uint32_t word = static_cast<uint32_t>(pending_);
    if (foreign_ == 0) {
      std::memcpy(out_, &word, 4);
    } else {  // the range's first byte
      merge(out_, static_cast<uint8_t>(word), foreign_);
      std::memcpy(out_ + 1, reinterpret_cast<const uint8_t*>(&word) + 1, 3);
      foreign_ = 0;
    }
    out_ += 4;
    pending_ >>= 32;
    count_ -= 32;
  }

  // Writes the whole bytes that wait (the first byte is merged already).
  void write_bytes() {
    for (; count_ >= 8; count_ -= 8, pending_ >>= 8) *out_++ = static_cast<uint8_t>(pending_);
  }

  uint8_t* out_;      // the byte that pending_'s bit 0 belongs to
  uint64_t pending_;  // bits not yet written, the first at bit 0
  int count_;         // how many of them (with the foreign bits of the first byte)
  uint8_t foreign_;   // bits of *out_ that belong to the range before this one
  uintptr_t prefetch_end_ = 0;  // the end of the bytes prefetch_within(n) covers (0: none)
  uintptr_t requested_ = 0;     // the first line not asked for yet
};

// Reads the bits of elements [first, first + n) of `mask`, in order; never a byte outside them.
// The bits of the first byte before the range are dropped when the reader is made, so a take
// is a test, a mask and two constant shifts when n is a constant (a whole vector).
class MaskReader {
 public:
  MaskReader() = default;
  MaskReader(const uint8_t* mask, int64_t first, int64_t n)
      : next_(mask + (first >> 3)), end_(mask + ((first + n + 7) >> 3)) {
    const int skip = static_cast<int>(first & 7);
    if (skip != 0 && n > 0) {
      pending_ = *next_++ >> skip;
      count_ = 8 - skip;
    }
  }

  // The next `n` bits (bit l: lane l), n <= 32.
  uint32_t take(int64_t n) {
    while (count_ < n) refill();
    const uint32_t bits = static_cast<uint32_t>(pending_ & low_bits(n));
    pending_ >>= n;
    count_ -= static_cast<int>(n);
    return bits;
  }

  // take(N) for a whole vector's N bits: where N is a multiple of 8 and N/8 bytes of the range
  // are left, it loads them and hands out N bits from the front, so as many stay waiting as
  // before (fewer than 32: there is room for N more in pending_), with no count to keep. The
  // backward with ReLU on [32, 64, 56, 56] and NHWC [8, 64, 224, 224], 1 and 2 threads, took a
  // mean 1.06x the plain call with it and 1.08x with take() (a loop over the public call,
  // alternating builds, three rounds; within the noise of single cells).
  template <int N>
  uint32_t take_whole() {
    if constexpr (N % 8 == 0) {
      if (end_ - next_ >= N / 8) {
        uint32_t word = 0;
        std::memcpy(&word, next_, N / 8);
        next_ += N / 8;
        const uint64_t all = pending_ | static_cast<uint64_t>(word) << count_;
        pending_ = all >> N;
        return static_cast<uint32_t>(all & low_bits(N));
      }
    }
    return take(N);
  }

  // The next `n` bits, n <= 64: 64 of them with one load where 8 bytes of the range are left.
  uint64_t take_wide(int64_t n) {
    if (n == 64 && end_ - next_ >= 8) {
      uint64_t word;
      std::memcpy(&word, next_, 8);
      next_ += 8;
      const uint64_t bits = pending_ | (word << count_);
      pending_ = (word >> 1) >> (63 - count_);  // word's top count_ bits (none when count_ = 0)
      return bits;
    }
    const uint64_t low = take(n < 32 ? n : 32);
    return n <= 32 ? low : low | static_cast<uint64_t>(take(n - 32)) << 32;
  }

 private:
  void refill() {
    if (end_ - next_ >= 4) {
      uint32_t word;
      std::memcpy(&word, next_, 4);
      pending_ |= static_cast<uint64_t>(word) << count_;
      next_ += 4;
      count_ += 32;
    } else {
      pending_ |= static_cast<uint64_t>(*next_++) << count_;
      count_ += 8;
    }
  }

  const uint8_t* next_ = nullptr;
  const uint8_t* end_ = nullptr;
  uint64_t pending_ = 0;
  int count_ = 0;
};

}  // namespace
}  // namespace bn
