#!/usr/bin/env bash
# fetch-libgomp.sh <x64|arm64> <dir>: puts the OpenMP runtime that ships beside the prebuilt
# binary into <dir> (libgomp.so.1, plus the libgomp.so link name to link against).
#
# Why this one: Debian 12's libgomp (gcc 12) needs GLIBC_2.34, so it would not load where the
# binary is meant to (glibc >= 2.28). Debian 11's (gcc 10.2.1, built on glibc 2.31) needs only
# GLIBC_2.17 and has every GOMP_/OMP_ symbol the addon uses (distribution.test.ts checks both).
# The version and the packages' checksums are pinned.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=$1 dir=$2
version=10.2.1-6
case "$arch" in
  x64) triplet=x86_64-linux-gnu sha256=4530c95aefa48e33fd8cf4acbe5c4b559dbe7bdf4c56469986c83a203982cef1 ;;
  arm64) triplet=aarch64-linux-gnu sha256=813af2e0b8ba0a7cea18c988cd843412ef6d0415700fc860d62816750e741670 ;;
  *) echo "fetch-libgomp.sh: no libgomp for architecture '$arch'" >&2; exit 1 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts/debian11.sh "$arch" "$work" "libgomp1=$version"
echo "$sha256  $(echo "$work"/debs/libgomp1_*.deb)" | sha256sum --check --quiet
mkdir -p "$dir"
cp -L "$work/root/usr/lib/$triplet/libgomp.so.1" "$dir/libgomp.so.1"
ln -sf libgomp.so.1 "$dir/libgomp.so"
