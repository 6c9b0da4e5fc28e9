/**
 * The SIMD kernels' store paths at every vector width (4, 8, 16 floats), on emulated vectors,
 * the fused ones and the ReLU mask's writer and reader included:
 * AVX-512's aligned head and 16-float streaming run here even on a CPU without AVX-512.
 * See test/native/emulated_kernels.cpp for what is checked.
 */
import { execFileSync, spawnSync } from 'child_process';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { expect, test } from 'vitest';

const compiler = process.env.CXX ?? 'g++';
// Without the sanitizer runtime that npm run test:asan preloads into node (and its children).
const env = { ...process.env, LD_PRELOAD: '' };
const hasCompiler = spawnSync(compiler, ['--version'], { env }).status === 0;

test.skipIf(!hasCompiler)('streaming and cached stores agree, and streamed cache lines are whole, at widths 4, 8 and 16', () => {
  const dir = mkdtempSync(join(tmpdir(), 'batchnorm-emulated-'));
  try {
    const program = join(dir, 'emulated_kernels');
    execFileSync(compiler, ['-std=c++17', '-O1', 'test/native/emulated_kernels.cpp', '-o', program], { stdio: 'pipe', env });
    const out = execFileSync(program, { encoding: 'utf8', env });
    expect(out.trim()).toBe('ok 3656');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
