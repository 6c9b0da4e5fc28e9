// Chooses the kernel table for this CPU, once per call site that asks (it is cheap: cpuid).
#pragma once
#include <cstdint>
#include <string>

#include "kernel_table.h"

namespace bn {

// The best kernel table this CPU and OS support, capped at `cap` (an ISA name such as
// "avx2"; empty means no cap). A cap naming an ISA this machine lacks falls to the best
// supported one below it; an ISA of another architecture caps at "scalar".
const KernelTable& select_kernels(const std::string& cap);

// The default Execution::streaming_bytes for `threads` threads: ops whose distinct arrays
// exceed it write their output with streaming stores. The rule follows what was measured:
// - Intel: the L2 of the threads in use. Its server L3 (a mesh shared by every core of the
//   socket, and under a hypervisor by other guests) serves one core at about the DRAM rate, so
//   streaming won from twice the L2 on (Emerald Rapids: 1.2-2.2x from 4 MiB at one thread).
// - elsewhere (AMD): one instance of the last-level cache, which serves its cores far faster
//   than DRAM (measured on Zen 3-5).
// Cache sizes come from Linux's sysfs (32 MiB / 2 MiB where it reports none).
int64_t default_streaming_bytes(int threads);

// Comma-separated names of the ISAs this machine can run, best first (e.g. "avx2,scalar").
std::string supported_isas();

}  // namespace bn
