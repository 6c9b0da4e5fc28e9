/**
 * Plain C++ test programs over native/src, built with the system compiler and run here:
 * - test/native/emulated_kernels.cpp: the SIMD kernels' store paths at every vector width (4, 8,
 *   16 floats), on emulated vectors, the fused ones and the ReLU mask's writer and reader
 *   included: AVX-512's aligned head and 16-float streaming run here even on a CPU without
 *   AVX-512;
 * - test/native/large_blocks.cpp: glibc's malloc serving large output blocks from its heap
 *   (native/src/malloc_tuning.h).
 * Each file says what it checks.
 */
import { execFileSync, spawnSync } from 'child_process';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { expect, test } from 'vitest';

import { cleanEnv, onGlibc } from './helpers/child';

const compiler = process.env.CXX ?? 'g++';
// Without the sanitizer runtime that npm run test:asan preloads into node (and its children),
// and without the package's variables (malloc's among them, which turn the addon's tuning off).
const env = cleanEnv({ LD_PRELOAD: '' });
const hasCompiler = spawnSync(compiler, ['--version'], { env }).status === 0;

/** Builds `sources` into one program and returns what it prints. */
function buildAndRun(sources: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'batchnorm-native-test-'));
  try {
    const program = join(dir, 'program');
    execFileSync(compiler, ['-std=c++17', '-O1', ...sources, '-o', program], { stdio: 'pipe', env });
    return execFileSync(program, { encoding: 'utf8', env }).trim();
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
