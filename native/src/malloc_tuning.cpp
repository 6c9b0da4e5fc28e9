#include "malloc_tuning.h"

#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace bn {

bool keep_freed_memory_mapped() {
#if defined(__GLIBC__)
  static const bool tuned = [] {
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_") ||
        std::getenv("GLIBC_TUNABLES"))
      return false;
    return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1;
  }();
  return tuned;
#else
  return false;
#endif
}

}  // namespace bn
