// Chan's merge of the kernels' exchange (native/src/chan_merge.h) on the parts given as
// arguments, `count mean m2` after `count mean m2`: prints, after each part, the bits of the
// mean and M2 merged so far in hex, for test/native-programs.test.ts to compare with
// mergeMoments' (lib/synchronized.ts) of the list up to that part.
// Built with fused multiply-add available (-mfma on x86-64, always on arm64), so that a product
// the compiler fused into an add shows as different bits.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "../../native/src/chan_merge.h"

static uint64_t bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

int main(int argc, char** argv) {
  bn::ChanMerge merged;
  for (int i = 1; i + 2 < argc; i += 3) {
    merged.add(std::strtod(argv[i], nullptr), std::strtod(argv[i + 1], nullptr), std::strtod(argv[i + 2], nullptr));
    std::printf("%016" PRIx64 " %016" PRIx64 "\n", bits(merged.mean), bits(merged.m2));
  }
}
