#include "dispatch.h"

#include <cstdlib>
#include <string>
#include <vector>

#ifdef __linux__
#include <fcntl.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace bn {
namespace {

struct Candidate {
  const KernelTable* table;
  bool supported;
};

#if defined(__x86_64__) || defined(_M_X64)
// XCR0 via xgetbv: which register states the OS saves on context switch. cpuid alone is not
// enough: a CPU may have AVX-512 while the OS (or hypervisor) does not enable its state.
unsigned long long read_xcr0() {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

std::vector<Candidate> candidates() {
  unsigned int a, b, c, d;
  bool avx = false, fma = false, avx2 = false, avx512f = false;
  unsigned long long xcr0 = 0;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    const bool osxsave = c & (1u << 27);
    avx = (c & (1u << 28)) && osxsave;
    fma = c & (1u << 12);
    if (osxsave) xcr0 = read_xcr0();
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    avx2 = b & (1u << 5);
    avx512f = b & (1u << 16);
  }
  const bool os_ymm = (xcr0 & 0x6) == 0x6;    // SSE and AVX state
  const bool os_zmm = (xcr0 & 0xE6) == 0xE6;  // plus opmask, ZMM0-15 upper halves, ZMM16-31
  const bool has_avx2 = avx && fma && avx2 && os_ymm;
  return {{&kAvx512Kernels, has_avx2 && avx512f && os_zmm},
          {&kAvx2Kernels, has_avx2},
          {&kScalarKernels, true}};
}
#elif defined(__aarch64__)
std::vector<Candidate> candidates() {  // NEON is part of the AArch64 base ISA.
  return {{&kNeonKernels, true}, {&kScalarKernels, true}};
}
#else
std::vector<Candidate> candidates() { return {{&kScalarKernels, true}}; }
#endif

}  // namespace

const KernelTable& select_kernels(const std::string& cap) {
  const std::vector<Candidate> list = candidates();
  static const char* const kKnownIsas[] = {"avx512", "avx2", "neon", "scalar"};
  bool cap_is_known = false;
  for (const char* name : kKnownIsas) cap_is_known |= cap == name;
  bool cap_reached = cap.empty() || !cap_is_known;
  bool cap_is_local = false;
  for (const Candidate& c : list) cap_is_local |= cap == c.table->isa;
  if (cap_is_known && !cap_is_local) return kScalarKernels;  // another architecture's ISA
  for (const Candidate& c : list) {
    cap_reached |= cap == c.table->isa;
    if (cap_reached && c.supported) return *c.table;
  }
  return kScalarKernels;
}

namespace {

// The first line of a small sysfs file, or "". Plain open/read: std::ifstream would pull in
// fstat64@GLIBC_2.33, which the portable prebuilds must not need (native/compat/).
std::string read_line(const std::string& path) {
  std::string text;
#ifdef __linux__
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buffer[64];
  const ssize_t n = read(fd, buffer, sizeof buffer - 1);
  close(fd);
  if (n > 0) text.assign(buffer, static_cast<size_t>(n));
#else
  (void)path;
#endif
  return text;
}

// Size in bytes of CPU 0's data or unified cache at `level` (0: the highest level) as Linux
// describes it in sysfs (one instance, e.g. "32768K"), or 0. Not sysconf(_SC_LEVEL3_CACHE_SIZE):
// glibc derives that from cpuid and reports 256 MB for a 32 MB L3 under KVM.
int64_t cache_bytes(int64_t level) {
  int64_t best_level = 0, bytes = 0;
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index);
    const int64_t at = std::atoll(read_line(dir + "/level").c_str());
    const std::string size = read_line(dir + "/size");
    char* unit = nullptr;
    const int64_t amount = std::strtoll(size.c_str(), &unit, 10);
    const bool wanted = level == 0 ? at > best_level : at == level;
    if (!wanted || amount <= 0 || read_line(dir + "/type").rfind("Instruction", 0) == 0) continue;
    best_level = at;
    bytes = amount * (*unit == 'K' ? 1 << 10 : *unit == 'M' ? 1 << 20 : *unit == 'G' ? 1 << 30 : 1);
  }
  return bytes;
}

bool intel() {
#if defined(__x86_64__) || defined(_M_X64)
  unsigned int a, b, c, d;
  // The vendor string is in ebx, edx, ecx: "Genu" "ineI" "ntel".
  return __get_cpuid(0, &a, &b, &c, &d) && b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;
#else
  return false;
#endif
}

}  // namespace

int64_t default_streaming_bytes(int threads) {
  static const bool per_core_l2 = intel();
  static const int64_t l2 = cache_bytes(2), llc = cache_bytes(0);
  if (per_core_l2) return (l2 > 0 ? l2 : int64_t{2} << 20) * threads;
  return llc > 0 ? llc : int64_t{32} << 20;
}

std::string supported_isas() {
  std::string names;
  for (const Candidate& c : candidates())
    if (c.supported) names += (names.empty() ? "" : ",") + std::string(c.table->isa);
  return names;
}

}  // namespace bn
