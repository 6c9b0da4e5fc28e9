// native/src/malloc_tuning.h on glibc: while a LargeBlocksFromHeap lives, a 64 MiB block comes
// from malloc's heap (no new mapping) and a freed one is reused; before and after, glibc maps
// such blocks afresh as usual (when its heap has no free block that large); and
// release_freed_memory hands the heap's free memory back. Built with malloc_tuning.cpp and run by
// test/native-programs.test.ts; prints "ok" or the first failure.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>

#include "../../native/src/malloc_tuning.h"

namespace {

constexpr size_t kBlock = size_t{64} << 20;  // past glibc's largest mmap threshold (32 MiB)

// Blocks glibc has mapped with mmap right now.
size_t mapped_blocks() { return mallinfo2().hblks; }

int fail(const char* what) {
  std::printf("FAILED: %s\n", what);
  return 1;
}

// A block of kBlock from malloc, and whether it got a mapping of its own.
struct Block {
  void* data;
  bool mapped;
};

Block allocate() {
  const size_t before = mapped_blocks();
  void* data = std::malloc(kBlock);
  return {data, mapped_blocks() > before};
}

}  // namespace

int main() {
  if (!bn::keep_freed_memory_mapped()) return fail("the addon's malloc tuning was not applied");
  Block plain = allocate();
  if (!plain.data || !plain.mapped) return fail("without the guard, glibc maps a 64 MiB block afresh");
  std::free(plain.data);
  Block first, second;
  {
    bn::LargeBlocksFromHeap from_heap;
    first = allocate();
  }
  if (!first.data || first.mapped) return fail("with the guard, a 64 MiB block comes from the heap");
  std::free(first.data);
  {
    bn::LargeBlocksFromHeap from_heap;
    second = allocate();
  }
  if (second.data != first.data) return fail("the freed heap block is reused by the next one");
  Block after = allocate();  // while `second` holds the heap's free block
  if (!after.data || !after.mapped) return fail("after the guard, glibc maps 64 MiB blocks afresh again");
  std::free(after.data);
  std::free(second.data);  // stays in the heap, for the next large block
  if (!bn::release_freed_memory()) return fail("release_freed_memory hands the freed heap block back");
  std::printf("ok\n");
  return 0;
}
