// glibc's malloc, tuned so that the outputs the package allocates for callers without
// destinations (tens of KiB to 32 MiB each, freed when the garbage collector frees their
// ArrayBuffer) reuse memory that is already mapped. By default glibc serves blocks past a
// threshold that starts at 128 KiB with a fresh mmap, and gives the top of its heap back to the
// OS past 128 KiB free: every new output then page-faults on its first write, which cost 1.4-4.8x
// the kernel itself on calls without destinations (see lib/outputs.ts).
#pragma once

namespace bn {

// Once per process, unless the user tuned malloc (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_
// or GLIBC_TUNABLES set): blocks up to 32 MiB (glibc's largest threshold) come from the heap, and
// up to 256 MiB of freed heap stays mapped for the next ones. Returns whether it tuned; false
// where the C library is not glibc.
bool keep_freed_memory_mapped();

}  // namespace bn
