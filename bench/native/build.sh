#!/usr/bin/env bash
# Builds the stand-alone native programs (kernel_check, scaling) into build/native-tools/,
# statically linked so they run on machines without Node.js or a matching libgomp.
# Sources and per-ISA flags come from sources.json, as in binding.gyp.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/native-tools
mkdir -p "$out"
list() { node scripts/sources.js "$@"; }
common=$(list common | tr ' ' '\n' | grep -v -e binding.cpp)
objects=()
for isa in avx2 avx512; do
  for src in $(list isa $isa sources); do
    obj="$out/$(basename "$src" .cpp).o"
    g++ -std=c++17 -O3 -fopenmp $(list isa $isa flags) -c "$src" -o "$obj"
    objects+=("$obj")
  done
done
for prog in kernel_check scaling; do
  g++ -std=c++17 -O3 -fopenmp -static bench/native/$prog.cpp $common "${objects[@]}" -o "$out/$prog"
done
echo "built $out/kernel_check $out/scaling"
