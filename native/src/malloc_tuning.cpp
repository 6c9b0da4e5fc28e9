#include "malloc_tuning.h"

#include <cstdlib>
#include <initializer_list>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace bn {

#if defined(__GLIBC__)
// glibc's own M_MMAP_MAX (DEFAULT_MMAP_MAX): how many blocks it may map at once.
constexpr int kGlibcMmapMax = 65536;
#endif

bool keep_freed_memory_mapped() {
#if defined(__GLIBC__)
  static const bool tuned = [] {
    for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_", "GLIBC_TUNABLES"})
      if (std::getenv(name)) return false;
    return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1;
  }();
  return tuned;
#else
  return false;
#endif
}

bool release_freed_memory() {
#if defined(__GLIBC__)
  return keep_freed_memory_mapped() && malloc_trim(0) == 1;
#else
  return false;
#endif
}

LargeBlocksFromHeap::LargeBlocksFromHeap() : active_(keep_freed_memory_mapped()) {
#if defined(__GLIBC__)
  if (active_) mallopt(M_MMAP_MAX, 0);
#endif
}

LargeBlocksFromHeap::~LargeBlocksFromHeap() {
#if defined(__GLIBC__)
  if (active_) mallopt(M_MMAP_MAX, kGlibcMmapMax);
#endif
}

}  // namespace bn
