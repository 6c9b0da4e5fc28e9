// How a tensor is cut into chunks for reductions and parallel work. Every cut is a function of
// the geometry alone, never of the thread count: partial results are stored per chunk and
// merged in chunk order, which makes results bitwise identical for any number of threads.
#pragma once
#include <cstdint>

namespace bn {

// The (outer, C, inner) model of SPEC section 2.
struct Geometry {
  int64_t outer, channels, inner;

  int64_t per_channel() const { return outer * inner; }  // M
  int64_t size() const { return outer * channels * inner; }
  // inner == 1 ([N, C], channels-last): vectorise across channels ("rows" kernels).
  bool rows_layout() const { return inner == 1 && channels > 1; }
  // With one channel, the runs of all outer slices are contiguous: one long run.
  Geometry canonical() const {
    return channels == 1 ? Geometry{1, 1, outer * inner} : *this;
  }
};

// Elements per chunk in the runs layout: small enough to stay in L1 for a second pass and to
// bound float accumulation, large enough to amortise the per-chunk work.
constexpr int64_t kRunsChunk = 2048;
// Target elements per chunk in the rows layout (a block of whole rows).
constexpr int64_t kRowsChunk = 32768;
// Rows chunks never split fewer rows than this, nor more channels than kRowsMaxWidth at once.
constexpr int64_t kRowsMinRows = 32;
constexpr int64_t kRowsMaxWidth = 4096;
// Below this many elements per thread, threading costs more than it saves.
constexpr int64_t kMinElementsPerThread = 65536;

// One chunk of a channel in the runs layout: `count` runs of `len` floats, starting at
// element `offset`, `stride` apart.
struct RunsChunk {
  int64_t offset, count, len, stride;
  int64_t elements() const { return count * len; }
};

// Runs layout (inner > 1): a channel is `outer` runs of `inner` floats. Short runs are grouped
// into one chunk; long runs are cut into pieces of kRunsChunk.
struct RunsPlan {
  Geometry g;
  int64_t runs_per_chunk;  // > 1 only for short runs
  int64_t pieces_per_run;  // > 1 only for long runs
  int64_t chunks_per_channel;

  explicit RunsPlan(Geometry geometry) : g(geometry) {
    if (g.inner >= kRunsChunk) {
      runs_per_chunk = 1;
      pieces_per_run = (g.inner + kRunsChunk - 1) / kRunsChunk;
      chunks_per_channel = g.outer * pieces_per_run;
    } else {
      runs_per_chunk = g.inner > 0 ? kRunsChunk / g.inner : 1;
      pieces_per_run = 1;
      chunks_per_channel = (g.outer + runs_per_chunk - 1) / runs_per_chunk;
    }
  }

  RunsChunk chunk(int64_t c, int64_t k) const {
    const int64_t stride = g.channels * g.inner;
    if (pieces_per_run > 1) {
      const int64_t o = k / pieces_per_run, start = (k % pieces_per_run) * kRunsChunk;
      const int64_t len = g.inner - start < kRunsChunk ? g.inner - start : kRunsChunk;
      return {(o * g.channels + c) * g.inner + start, 1, len, stride};
    }
    const int64_t o = k * runs_per_chunk;
    const int64_t count = g.outer - o < runs_per_chunk ? g.outer - o : runs_per_chunk;
    return {(o * g.channels + c) * g.inner, count, g.inner, stride};
  }
};

// Rows layout (inner == 1): blocks of whole rows, split across channels only when rows are
// very wide. Row chunks are multiples of kRowsMinRows rows.
struct RowsPlan {
  Geometry g;
  int64_t rows_per_chunk, row_chunks, width, column_blocks;

  explicit RowsPlan(Geometry geometry) : g(geometry) {
    const int64_t target_rows = (kRowsChunk + g.channels - 1) / g.channels;
    rows_per_chunk = (target_rows + kRowsMinRows - 1) / kRowsMinRows * kRowsMinRows;
    row_chunks = (g.outer + rows_per_chunk - 1) / rows_per_chunk;
    width = g.channels < kRowsMaxWidth ? g.channels : kRowsMaxWidth;
    column_blocks = (g.channels + width - 1) / width;
  }

  int64_t first_row(int64_t k) const { return k * rows_per_chunk; }
  int64_t rows(int64_t k) const {
    const int64_t left = g.outer - first_row(k);
    return left < rows_per_chunk ? left : rows_per_chunk;
  }
  int64_t first_channel(int64_t b) const { return b * width; }
  int64_t channels(int64_t b) const {
    const int64_t left = g.channels - first_channel(b);
    return left < width ? left : width;
  }
};

// Threads worth using for `elements` of work, given `requested`.
inline int threads_for(int64_t elements, int requested) {
  const int64_t useful = elements / kMinElementsPerThread;
  if (useful < 2 || requested < 2) return 1;
  return useful < requested ? static_cast<int>(useful) : requested;
}

}  // namespace bn
