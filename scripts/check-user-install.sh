#!/usr/bin/env bash
# check-user-install.sh: the user's path, end to end. `npm pack`, then `npm install <tarball>`
# in an empty project with no compiler, make or python on PATH:
#   1. as packed (prebuilds included): the native backend, with no compile, correct results
#   2. with prebuilds/ removed from the tarball: the install still succeeds and says, in one
#      line, that the JavaScript backend will be used; backendInfo() says js and why
#   3. the same tarball with the usual PATH: compiled from source at install, native backend
# Needs prebuilds/ (npm run build:prebuilds) and the npm registry (for the dependencies).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/checks.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm_cli=$(readlink -f "$(command -v npm)")
host="linux-$(node -p process.arch)"

# A PATH with node and a shell (npm runs scripts with sh) and nothing to build with.
mkdir "$work/bin"
ln -s "$(command -v node)" "$work/bin/node"
ln -s "$(command -v sh)" "$work/bin/sh"
no_toolchain() { ! PATH="$work/bin" command -v cc c++ gcc g++ clang make python python3 >/dev/null; }
check "PATH for the installs has no cc, c++, gcc, g++, clang, make or python" no_toolchain

pack=$(npm pack --silent --json --pack-destination "$work" | node -e '
  const [p] = JSON.parse(require("fs").readFileSync(0, "utf8"));
  console.log(JSON.stringify({ file: p.filename, size: p.size, unpacked: p.unpackedSize, files: p.files.map((f) => f.path) }))')
tarball="$work/$(node -p 'JSON.parse(process.argv[1]).file' "$pack")"
node -e '
  const p = JSON.parse(process.argv[1]);
  console.log(`packed: ${p.file}, ${p.size} bytes (${(p.size / 2 ** 20).toFixed(2)} MiB), ${p.unpacked} unpacked, ${p.files.length} files`);
  for (const f of p.files.filter((f) => f.startsWith("prebuilds/"))) console.log(`  ${f}`)' "$pack"
check_json "the tarball ships both prebuilds" "$pack" \
  '["linux-x64", "linux-arm64"].every((d) => ["batchnorm.glibc.node", "libgomp.so.1"].every((f) => r.files.includes(`prebuilds/${d}/${f}`)))'
check_json "the tarball is under 2 MB" "$pack" 'r.size < 2e6'

# install_into DIR TARBALL [PATH]: npm install in a fresh project, by default with the bare
# PATH; the log is DIR/install.log.
install_into() {
  mkdir -p "$1" && echo '{ "name": "app", "version": "1.0.0", "private": true }' >"$1/package.json"
  (cd "$1" && PATH="${3:-$work/bin}" node "$npm_cli" install --foreground-scripts --no-audit --no-fund "$2" >install.log 2>&1) ||
    { cat "$1/install.log" && return 1; }
}
report_of() { PATH="$work/bin" node scripts/check-package.js "$1/node_modules/batchnorm"; }

echo "== 1. as packed, with prebuilds"
app="$work/app-prebuilt"
check "npm install succeeds" install_into "$app" "$tarball"
check "nothing was compiled (no build/ folder)" test ! -e "$app/node_modules/batchnorm/build"
report=$(report_of "$app")
echo "  $report"
check_json "backendInfo(): native, no fallbackReason" "$report" 'r.info.backend === "native" && r.info.fallbackReason === undefined'
check_json "the $host prebuild and its libgomp are the ones loaded" "$report" \
  "r.libraries.every((f) => f.includes('/node_modules/batchnorm/prebuilds/$host/')) && r.libraries.length === 2"
check_json "the public API is correct (float64 reference)" "$report" 'r.maxError <= 1e-5'
check_json "native errors reach JavaScript as JS errors" "$report" 'r.nativeError.startsWith("RangeError")'

echo "== 2. prebuilds removed from the tarball"
mkdir "$work/repack"
tar -xzf "$tarball" -C "$work/repack" && rm -rf "$work/repack/package/prebuilds"
tar -czf "$work/batchnorm-no-prebuilds.tgz" -C "$work/repack" package
app="$work/app-js"
check "npm install succeeds without a toolchain" install_into "$app" "$work/batchnorm-no-prebuilds.tgz"
line=$(grep '^batchnorm: ' "$app/install.log")
echo "  install said: $line"
says_one_line() {
  [ "$(grep -c '^batchnorm: .*the JavaScript backend will be used\.$' "$app/install.log")" -eq 1 ] && ! grep -q 'gyp ERR!' "$app/install.log"
}
check "the install says, in one line (and no build log), that the JavaScript backend will be used" says_one_line
report=$(report_of "$app")
echo "  $report"
check_json "backendInfo(): js, with a fallbackReason that says why" "$report" \
  'r.info.backend === "js" && /could not be loaded: .*; building it at install failed: \S/.test(r.info.fallbackReason)'
check_json "the public API is correct (float64 reference)" "$report" 'r.maxError <= 1e-5'

echo "== 3. prebuilds removed, compilers on PATH"
app="$work/app-compiled"
check "npm install compiles the addon from source" install_into "$app" "$work/batchnorm-no-prebuilds.tgz" "$PATH"
check "the compiled addon is in build/Release" test -f "$app/node_modules/batchnorm/build/Release/batchnorm.node"
report=$(report_of "$app")
echo "  $report"
check_json "backendInfo(): native, from the local build" "$report" \
  'r.info.backend === "native" && r.libraries.some((f) => f.endsWith("/build/Release/batchnorm.node"))'
check_json "the public API is correct (float64 reference)" "$report" 'r.maxError <= 1e-5'

finish
