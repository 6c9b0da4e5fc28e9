// Transparent huge pages for large fresh output arrays (Linux). A new block of tens of MB comes
// from a fresh mmap, and its first write page-faults every 4 KiB page: several times the cost of
// the kernel that writes it. Asking for 2 MiB pages first makes those faults 512x fewer.
#pragma once
#include <cstddef>

namespace bn {

// Advises the kernel to back the whole 2 MiB pages inside [data, data + bytes) with huge pages.
// Only advice: returns whether it was taken (false where the OS has no such advice, the range
// holds no whole huge page, or the kernel refused); the memory and its contents are unchanged.
bool advise_huge_pages(void* data, size_t bytes);

}  // namespace bn
