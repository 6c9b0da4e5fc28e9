/**
 * Plain C++ test programs over native/src, built with the system compiler and run here:
 * - test/native/emulated_kernels.cpp: the SIMD kernels' store paths at every vector width (4, 8,
 *   16 floats), on emulated vectors, the fused ones and the ReLU mask's writer and reader
 *   included: AVX-512's aligned head and 16-float streaming run here even on a CPU without
 *   AVX-512;
 * - test/native/large_blocks.cpp: glibc's malloc serving large output blocks from its heap
 *   (native/src/malloc_tuning.h);
 * - test/native/channel_exchange.cpp: the kernels' exchange between replicas (SPEC section 8),
 *   threads standing for replicas, under ThreadSanitizer (which fails the run on a data race);
 * - test/native/chan_merge.cpp: the exchange's Chan merge gives mergeMoments' bits, built with
 *   the shipping flags and fused multiply-add available (as every arm64 build has it);
 * - bench/native/sync_pipeline_probe.cpp, the README's probe of a pipelined synchronized step:
 *   that it builds and runs its variants (on x86-64 with AVX2; the timings are not checked);
 * - bench/native/kernel_check.cpp and scaling.cpp (for machines without Node.js, built by
 *   bench/native/build.sh): that they still compile against native/src.
 * Each file says what it checks.
 */
import { execFileSync, spawnSync } from 'child_process';
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { expect, test } from 'vitest';

import { mergeMoments } from '../lib/index';
import { cleanEnv, onGlibc } from './helpers/child';
import { rng } from './helpers/random';

const compiler = process.env.CXX ?? 'g++';
// Without the sanitizer runtime that npm run test:asan preloads into node (and its children),
// and without the package's variables (malloc's among them, which turn the addon's tuning off).
const env = cleanEnv({ LD_PRELOAD: '' });
const hasCompiler = spawnSync(compiler, ['--version'], { env }).status === 0;

/** Builds `sources` (with `flags`) into one program and returns what it prints when run with `args`. */
function buildAndRun(sources: string[], flags: string[] = [], args: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'batchnorm-native-test-'));
  try {
    const program = join(dir, 'program');
    execFileSync(compiler, ['-std=c++17', '-O1', ...flags, ...sources, '-o', program], { stdio: 'pipe', env });
    return execFileSync(program, args, { encoding: 'utf8', env }).trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test.skipIf(!hasCompiler)('streaming and cached stores agree, and streamed cache lines are whole, at widths 4, 8 and 16', () => {
  expect(buildAndRun(['test/native/emulated_kernels.cpp'])).toBe('ok 3656');
});

test.skipIf(!hasCompiler || !onGlibc)('large output blocks come from the heap and are reused; other large blocks stay fresh mappings', () => {
  expect(buildAndRun(['test/native/large_blocks.cpp', 'native/src/malloc_tuning.cpp'])).toBe('ok');
});

// ThreadSanitizer's runtime ships with GCC on x86-64 and arm64 Linux.
const hasTsan = hasCompiler && process.platform === 'linux' && ['x64', 'arm64'].includes(process.arch);

test.skipIf(!hasTsan)('replicas exchanging inside the kernels agree bit for bit, match the whole batch, and fail cleanly when one stops or runs another op, without data races', () => {
  const sources = ['test/native/channel_exchange.cpp', 'native/src/batchnorm_ops.cpp', 'native/src/kernels_scalar.cpp'];
  expect(buildAndRun(sources, ['-fsanitize=thread', '-g', '-Wno-unknown-pragmas'])).toMatch(/^ok \d+$/);
});

// FMA: baseline on arm64; on x86-64 where the CPU has it (the program must run here).
const fmaFlags = process.arch === 'arm64' ? [] : process.arch === 'x64' && process.platform === 'linux' && /\bfma\b/.test(readFileSync('/proc/cpuinfo', 'utf8')) ? ['-mfma'] : null;

test.skipIf(!hasCompiler || !fmaFlags)("the kernels' Chan merge gives mergeMoments' bits where the compiler could fuse multiply-adds", () => {
  const r = rng(29);
  const parts = Array.from({ length: 300 }, () => ({ count: r.int(0, 5000), mean: Float64Array.of(r.normal() * 10 ** r.int(-3, 4)), m2: Float64Array.of(r.uniform() * 1e3) }));
  // the shipping optimisation (sources.json's cflags), where the compiler fuses what it may
  const printed = buildAndRun(['test/native/chan_merge.cpp'], ['-O3', '-fno-trapping-math', ...fmaFlags!], parts.flatMap((p) => [p.count, p.mean[0]!, p.m2[0]!].map(String)));
  const hex = (v: number) => new BigUint64Array(Float64Array.of(v).buffer)[0]!.toString(16).padStart(16, '0');
  const expected = parts.map((_, k) => {
    const merged = mergeMoments(parts.slice(0, k + 1));
    return `${hex(merged.mean[0]!)} ${hex(merged.m2[0]!)}`;
  });
  expect(printed.split('\n')).toEqual(expected);
});

const hasAvx2 = process.arch === 'x64' && process.platform === 'linux' && /\bavx2\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));

test.skipIf(!hasCompiler || !hasAvx2)('the synchronized-step probe builds and times every variant', () => {
  const printed = buildAndRun(['bench/native/sync_pipeline_probe.cpp'], ['-mavx2', '-mfma', '-pthread'], ['2', '2', '8', '64']);
  expect(printed.split('\n')[0]).toBe('[2, 8, 64] per replica, 2 replicas, 2 steps:');
  for (const variant of ['plain', 'split', 'pipe G=1', 'pipe G=2', 'pipe G=4', 'pipe G=8']) {
    expect(printed).toMatch(new RegExp(`^  ${variant} +\\d+\\.\\d{3} ms  [+-]\\d+\\.\\d%$`, 'm'));
  }
});

test.skipIf(!hasCompiler)("bench/native's stand-alone programs compile against the current native/src", () => {
  for (const program of ['bench/native/kernel_check.cpp', 'bench/native/scaling.cpp']) {
    expect(spawnSync(compiler, ['-std=c++17', '-fopenmp', '-fsyntax-only', program], { env, encoding: 'utf8' }).stderr, program).toBe('');
  }
});
