#!/usr/bin/env bash
# npm run test:asan: the native test suite, fuzzers included, against the addon built with
# AddressSanitizer and UndefinedBehaviorSanitizer (scripts/build-asan.js). Node itself is not
# instrumented, so the sanitizer runtime is preloaded into every node process; any report
# aborts the process that hit it, which fails its test (or the run). Extra arguments go to
# vitest. Left out: the RSS-based leak test (ASan's quarantine holds freed memory on purpose),
# the distribution test (it checks the prebuilt binaries, which this run replaces by its own) and
# the out-of-memory test (under an address-space limit ASan's allocator aborts, by design, where
# malloc would fail).
set -euo pipefail
cd "$(dirname "$0")/.."

addon=$(node scripts/build-asan.js)

export LD_PRELOAD
LD_PRELOAD=$("${CXX:-g++}" -print-file-name=libasan.so) # the compiler build-asan.js used
# detect_leaks=0: LeakSanitizer reports V8's own allocations, which node frees at exit or never.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:check_initialization_order=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export BATCHNORM_BINARY=$addon

exec npx vitest run --project native --exclude test/leaks.test.ts --exclude test/distribution.test.ts --exclude test/out-of-memory.test.ts "$@"
