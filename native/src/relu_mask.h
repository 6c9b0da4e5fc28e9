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
  // How far ahead of its stores a writer asks for the mask's cache lines (see prefetch).
  static constexpr int64_t kPrefetchBytes = 512;

  MaskWriter(uint8_t* mask, int64_t first)
      : out_(mask + (first >> 3)),
        pending_(0),
        count_(static_cast<int>(first & 7)),
        foreign_(static_cast<uint8_t>(low_bits(first & 7))) {}

  // Asks for the cache lines of the next `n` elements' bits before they are stored: the first
  // kPrefetchBytes of them now, each later line when the stores are kPrefetchBytes behind it.
  // A mask store that misses the cache can hold up the stores behind it (they leave the core in
  // order), the output's streaming stores too: an NCHW forwardTrain with ReLU on [32, 64, 56, 56]
  // took 1.05-1.24x the plain call without these requests and 1.04-1.16x with them, against
  // 1.00-1.03x for a build that stored no mask (one thread; a C++ loop over the op, alternating
  // builds). The runs kernels call it once per writer; without a call, nothing is requested.
  void prefetch(int64_t n) {
    const uintptr_t first = reinterpret_cast<uintptr_t>(out_);
    prefetch_end_ = first + static_cast<uintptr_t>((count_ + n + 7) >> 3);
    const uintptr_t now = first + static_cast<uintptr_t>(kPrefetchBytes);
    for (uintptr_t line = line_of(first); line < prefetch_end_ && line < now; line += kLineBytes)
      request(line);
  }

  // Appends the low `n` bits of `bits` (bit l: lane l), n <= 32.
  void push(uint32_t bits, int64_t n) {
    pending_ |= (bits & low_bits(n)) << count_;
    count_ += static_cast<int>(n);
    if (count_ >= 32) write_word();
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
    // Into a new cache line (out_ need not be 4-byte aligned): ask for the one kPrefetchBytes on.
    const uintptr_t at = reinterpret_cast<uintptr_t>(out_);
    const uintptr_t ahead = line_of(at) + static_cast<uintptr_t>(kPrefetchBytes);
    if (line_of(at - 4) != line_of(at) && ahead < prefetch_end_) request(ahead);
    pending_ >>= 32;
    count_ -= 32;
  }

  uint8_t* out_;      // the byte that pending_'s bit 0 belongs to
  uint64_t pending_;  // bits not yet written, the first at bit 0
  int count_;         // how many of them (with the foreign bits of the first byte)
  uint8_t foreign_;   // bits of *out_ that belong to the range before this one
  uintptr_t prefetch_end_ = 0;  // the end of the bytes prefetch(n) covers (0: none)
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
