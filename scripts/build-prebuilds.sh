#!/usr/bin/env bash
# build-prebuilds.sh [x64] [arm64] (default: both): the prebuilt binaries npm pack ships, built by
# prebuildify (node-gyp, batchnorm_portable=true) into prebuilds/linux-<arch>/:
#   batchnorm.glibc.node   N-API 8, stripped; needs glibc >= 2.28 and nothing else but
#   libgomp.so.1           the OpenMP runtime beside it (scripts/fetch-libgomp.sh), which the
#                          binary finds through its RUNPATH $ORIGIN
# arm64 is cross-compiled with Debian's g++-aarch64-linux-gnu. Each build runs in its own copy
# of the sources under build-prebuild/<arch>/, so build/ (the local build) is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
node_version=$(node -p process.versions.node)

prebuild() {
  local arch=$1 stage="$root/build-prebuild/$1" cross package
  case "$arch" in
    x64) cross="" package=g++ ;;
    arm64) cross=aarch64-linux-gnu- package=g++-aarch64-linux-gnu ;;
    *) echo "build-prebuilds.sh: unsupported architecture '$arch' (x64, arm64)" >&2; return 1 ;;
  esac
  command -v "${cross}g++" >/dev/null || { echo "build-prebuilds.sh: ${cross}g++ not found (Debian: apt-get install $package)" >&2; return 1; }

  rm -rf "$stage" "prebuilds/linux-$arch"
  mkdir -p "$stage/scripts"
  cp -r package.json binding.gyp sources.json native "$stage/"
  cp scripts/sources.js "$stage/scripts/"
  ln -s "$root/node_modules" "$stage/node_modules"
  scripts/fetch-libgomp.sh "$arch" "$stage/gomp"

  # LDFLAGS: link against the libgomp that ships, so the binary asks only for what it has.
  CC="${cross}gcc" CXX="${cross}g++" AR="${cross}ar" LDFLAGS="-L$stage/gomp" npm_config_batchnorm_portable=true \
    node node_modules/prebuildify/bin.js --napi --strip --strip-bin="${cross}strip" --tag-libc \
    --arch="$arch" --target="node@$node_version" --cwd="$stage" --out="$root"
  cp "$stage/gomp/libgomp.so.1" "prebuilds/linux-$arch/"
  ls -l "prebuilds/linux-$arch"
}

archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(x64 arm64)
for arch in "${archs[@]}"; do prebuild "$arch"; done
