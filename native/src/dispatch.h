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

// The default Execution::streaming_bytes: the size of one instance of the last-level cache as
// Linux reports it (32 MiB where it reports none). Ops touching more than that write with
// streaming stores.
int64_t default_streaming_bytes();

// Comma-separated names of the ISAs this machine can run, best first (e.g. "avx2,scalar").
std::string supported_isas();

}  // namespace bn
