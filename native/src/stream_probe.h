// A STREAM-like memory bandwidth probe (copy and triad), run in the caller's process at the
// benchmark's own thread counts, so kernel figures can be read as a fraction of the roof.
#pragma once
#include <cstdint>

namespace bn {

enum class StreamKernel { kCopy, kTriad };

// Median bandwidth in GB/s over `reps` passes of `kernel` on arrays of `floats` floats each,
// counted as STREAM does (copy: 8 bytes per element, triad: 12; no write-allocate traffic).
// Throws std::bad_alloc when the arrays cannot be allocated.
double stream_bandwidth(StreamKernel kernel, int64_t floats, int threads, int reps);

}  // namespace bn
