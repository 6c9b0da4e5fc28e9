// glibc's malloc, tuned so that the outputs the package allocates for callers without
// destinations (tens of KiB to hundreds of MiB each, freed when the garbage collector frees
// their ArrayBuffer) reuse memory that is already mapped. By default glibc serves blocks past a
// threshold that starts at 128 KiB with a fresh mmap, and gives the top of its heap back to the
// OS past 128 KiB free: every new output then page-faults on its first write, which cost 1.4-4.8x
// the kernel itself on calls without destinations (see lib/outputs.ts).
#pragma once

namespace bn {

// Once per process, unless the user tuned malloc (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_,
// MALLOC_MMAP_MAX_ or GLIBC_TUNABLES set): blocks up to 32 MiB (glibc's largest threshold) come
// from the heap, and up to 256 MiB of freed heap stays mapped for the next ones. Returns whether
// it tuned; false where the C library is not glibc.
bool keep_freed_memory_mapped();

// Hands the free memory of malloc's heaps back to the OS (malloc_trim): what they kept of freed
// outputs for reuse, once no more outputs are coming (lib/memory-release.ts decides when). Returns
// whether any was released; false where keep_freed_memory_mapped() did not tune.
bool release_freed_memory();

// While one lives, glibc's malloc serves blocks past 32 MiB from its heap too (M_MMAP_MAX 0),
// where a block the garbage collector freed is reused without a page fault, instead of a fresh
// mapping whose pages the OS must fault in and zero. Made around the allocation of one large
// output, so the rest of the process keeps glibc's fresh mappings (which go back to the OS when
// freed); another thread's large block allocated at that moment comes from a heap too, which is
// harmless. Does nothing where keep_freed_memory_mapped() did not tune.
class LargeBlocksFromHeap {
 public:
  LargeBlocksFromHeap();
  ~LargeBlocksFromHeap();
  LargeBlocksFromHeap(const LargeBlocksFromHeap&) = delete;
  LargeBlocksFromHeap& operator=(const LargeBlocksFromHeap&) = delete;

 private:
  const bool active_;
};

}  // namespace bn
