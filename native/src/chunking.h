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
  // With one channel, the runs of all outer slices are contiguous: one long run.
  Geometry canonical() const { return channels == 1 ? Geometry{1, 1, outer * inner} : *this; }
};

// Runs shorter than this are handled by the rows kernels, with one column per (c, i).
constexpr int64_t kShortRun = 64;
// Longest piece of a run that is reduced in one go (it must sit in L1 for a second pass).
constexpr int64_t kRunsChunk = 2048;
// Runs at least this long are processed channel by channel when channels share out evenly:
// the apply pass then re-reads a channel's slab from cache.
constexpr int64_t kSlabRun = 1024;
// Elements per parallel task in memory-order schedules.
constexpr int64_t kTaskElements = 16384;
// Rows layout: at most this many elements per row chunk, and as many as this many row chunks
// (for parallelism) as long as each keeps at least kRowsMinRows rows. Longer chunks pay: only a
// chunk's first sub-block of rows needs the extra sweep that estimates its mean (kernels_simd.h),
// which made 32-row chunks cost 10-20% on [256, 1024] and [4096, 1024] forwardTrain.
constexpr int64_t kRowsChunk = 262144;
constexpr int64_t kRowsTargetChunks = 64;
constexpr int64_t kRowsMinRows = 128;
// Column blocks: at most this wide (a task's float accumulators stay in L1), and split in
// multiples of a cache line of floats.
constexpr int64_t kColumnAlign = 16;
constexpr int64_t kRowsMaxWidth = 1024;
// Elementwise passes on narrow rows see this many floats' worth of consecutive rows as one row.
constexpr int64_t kFoldedWidth = 1024;
// Below this many elements per thread, threading costs more than it saves.
constexpr int64_t kMinElementsPerThread = 65536;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t min_of(int64_t a, int64_t b) { return a < b ? a : b; }

// Runs layout (inner >= kShortRun): channel c holds `outer` runs of `inner` floats. A run
// longer than kRunsChunk is cut into pieces; chunk k of a channel is piece (k % pieces) of
// run (k / pieces). Partial results live at index k * C + c.
struct RunsPlan {
  Geometry g;
  int64_t pieces;             // per run
  int64_t chunks;             // per channel: outer * pieces
  int64_t channels_per_task;  // memory-order tasks (pieces == 1): runs of one outer slice

  explicit RunsPlan(Geometry geometry)
      : g(geometry),
        pieces(ceil_div(g.inner, kRunsChunk)),
        chunks(g.outer * pieces),
        channels_per_task(min_of(g.channels, 1 + kTaskElements / g.inner)) {}

  struct Piece {
    int64_t offset, len;
  };
  Piece piece(int64_t c, int64_t k) const {
    const int64_t o = k / pieces, start = (k % pieces) * kRunsChunk;
    return {(o * g.channels + c) * g.inner + start, min_of(kRunsChunk, g.inner - start)};
  }

  // Memory-order tasks when runs are whole (pieces == 1): outer slice o, channels [c0, c0+n).
  int64_t channel_blocks() const { return ceil_div(g.channels, channels_per_task); }
  int64_t tasks() const { return pieces == 1 ? g.outer * channel_blocks() : g.channels * chunks; }
};

// Rows layout (inner < kShortRun): `outer` rows of W = C * inner columns, column j belonging
// to channel j / inner. Row chunks (the unit of partial results) depend on the geometry only;
// column blocks only split independent columns, so they may follow the thread count without
// changing a single bit. Partials of row chunk rk live at rk * W + column.
//
// When a task spans whole rows they are contiguous, and the elementwise passes (the same
// arithmetic on every element, so the grouping cannot change a bit) take `fold` rows at a time
// as one row of fold * W columns: long vector loops and few partial cache lines even when W is
// a handful of channels. Per-column coefficient arrays then repeat `fold` times.
struct RowsPlan {
  Geometry g;
  int64_t width;  // W
  int64_t rows_per_chunk, row_chunks, block_width, column_blocks, fold;

  RowsPlan(Geometry geometry, int threads) : g(geometry), width(g.channels * g.inner) {
    const int64_t rows = min_of(ceil_div(kRowsChunk, width), ceil_div(g.outer, kRowsTargetChunks));
    rows_per_chunk = ceil_div(rows, kRowsMinRows) * kRowsMinRows;
    row_chunks = ceil_div(g.outer, rows_per_chunk);
    // Enough tasks for every thread: split columns, in whole cache lines, when row chunks are few.
    const int64_t wanted_blocks = ceil_div(2 * threads, row_chunks);
    const int64_t split = ceil_div(ceil_div(width, wanted_blocks), kColumnAlign) * kColumnAlign;
    block_width = min_of(width, min_of(kRowsMaxWidth, split < kColumnAlign ? kColumnAlign : split));
    column_blocks = ceil_div(width, block_width);
    // No more rows to a fold than the tensor has: the per-column coefficients are set for
    // every row of a fold, which cost more than the data on small tensors.
    fold = column_blocks == 1 && width < kFoldedWidth ? min_of(kFoldedWidth / width, g.outer) : 1;
  }

  struct Task {
    int64_t row_chunk, first_row, rows, first_column, columns;
  };
  int64_t tasks() const { return row_chunks * column_blocks; }
  Task task(int64_t t) const {
    const int64_t rk = t / column_blocks, b = t % column_blocks;
    return {rk, rk * rows_per_chunk, rows_in(rk), b * block_width,
            min_of(block_width, width - b * block_width)};
  }
  int64_t rows_in(int64_t rk) const { return min_of(rows_per_chunk, g.outer - rk * rows_per_chunk); }
  // Where a task's data starts, and where its partial results go.
  int64_t offset(const Task& t) const { return t.first_row * width + t.first_column; }
  int64_t partial(const Task& t) const { return t.row_chunk * width + t.first_column; }
};

// Threads worth using for `elements` of work, given `requested`.
inline int threads_for(int64_t elements, int requested) {
  const int64_t useful = elements / kMinElementsPerThread;
  if (useful < 2 || requested < 2) return 1;
  return useful < requested ? static_cast<int>(useful) : requested;
}

}  // namespace bn
