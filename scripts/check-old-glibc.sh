#!/usr/bin/env bash
# check-old-glibc.sh: each prebuild run on an older glibc than the one it was built with:
# Debian 11's glibc 2.31, older than every symbol version that native/compat/glibc_compat.cpp
# redirects (2.32, 2.34, 2.35), with Debian 11's libstdc++ and libgcc_s for Node.js itself.
#   x64    Node.js started by Debian 11's dynamic loader, with Debian 11's libraries
#   arm64  an arm64 Node.js 20 under qemu-user, with Debian 11's arm64 libraries as its root
# Needs prebuilds/ (npm run build:prebuilds), qemu-user, the npm registry and Debian's mirror.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/checks.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch_arm64_node "$work" || exit 1

# check_on_debian11 ARCH TRIPLET: the linux-ARCH prebuild, loaded as a user's install would.
check_on_debian11() {
  local arch=$1 triplet=$2 package="$work/package-$1" debian="$work/debian11-$1" report
  echo "== linux-$arch on Debian 11's glibc"
  mkdir -p "$package/prebuilds" "$package/node_modules"
  cp -r package.json dist "$package/"
  cp -r "prebuilds/linux-$arch" "$package/prebuilds/"
  cp -r node_modules/node-gyp-build "$package/node_modules/"
  scripts/debian11.sh "$arch" "$debian" libc6 libstdc++6 libgcc-s1 >/dev/null || { check "fetch Debian 11's libraries" false && return; }
  local libraries="/lib/$triplet:/usr/lib/$triplet"
  local check_package=("$root/scripts/check-package.js" "$package")
  export BATCHNORM_BACKEND=native BATCHNORM_NUM_THREADS=4
  if [ "$arch" = x64 ]; then
    report=$("$debian/root/lib/$triplet/ld-linux-x86-64.so.2" --library-path "$debian/root${libraries//:/:$debian/root}" \
      "$(command -v node)" "${check_package[@]}")
  else
    report=$(LD_LIBRARY_PATH=$libraries qemu-aarch64 -L "$debian/root" "$work/package/bin/node" "${check_package[@]}")
  fi
  unset BATCHNORM_BACKEND BATCHNORM_NUM_THREADS
  echo "  $report"
  check_json "linux-$arch: runs on glibc 2.31" "${report:-null}" 'r.glibc === "2.31"'
  check_json "linux-$arch: native backend from the prebuild and its libgomp, 4 threads" "${report:-null}" \
    "r.info.backend === 'native' && r.info.threads === 4 && r.libraries.length === 2 && r.libraries.every((f) => f.includes('/prebuilds/linux-$arch/'))"
  check_json "linux-$arch: OpenMP threads run" "${report:-null}" 'r.ompThreads >= 3'
  check_json "linux-$arch: the public API is correct (float64 reference)" "${report:-null}" 'r.maxError <= 1e-5'
  check_json "linux-$arch: C++ exceptions reach JavaScript (the unwinder works)" "${report:-null}" 'r.nativeError.startsWith("RangeError")'
}

check_on_debian11 x64 x86_64-linux-gnu
check_on_debian11 arm64 aarch64-linux-gnu
finish
