#!/usr/bin/env bash
# One prepared run for a many-core machine without Node.js (bench/native/build.sh first, and
# carry build/native-tools): kernel correctness for every ISA the CPU has, native thread
# scaling, and PyTorch's figures on the same cases when python3 has torch. Writes to $OUT.
set -u
out=${OUT:-/tmp/batchnorm-device}
mkdir -p "$out"
tools=build/native-tools
{ lscpu; nproc; } > "$out/cpu.txt" 2>&1
"$tools/kernel_check" > "$out/kernel_check.txt" 2>&1; echo "kernel_check exit $?" >> "$out/kernel_check.txt"
"$tools/scaling" > "$out/scaling.txt" 2>&1
if python3 -c 'import torch' 2>/dev/null; then
  MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 \
    python3 bench/native/torch_scaling.py > "$out/torch.txt" 2>&1
fi
tail -3 "$out/kernel_check.txt"
