/**
 * `npm run bench:denormals`: what denormal (subnormal) data costs against normal data, per op.
 * The kernels never flush denormals to zero (SPEC section 5 wants IEEE results), so the cost is
 * the CPU's: AMD Zen handles them at full speed, Intel cores take a microcode assist per
 * instruction whose operand or result is denormal. A figure to read, never a test assertion.
 */

import { backendInfo, backward, forwardInference, forwardTrain } from '../lib/index';
import { machine } from './machine';

const DENORMAL = 1e-39; // float32 normals start at 2^-126 ~ 1.18e-38

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2147483648 - 1;
  });
}

// 64K floats: in cache, so a per-instruction penalty shows rather than memory time.
const shape = [4, 16, 32, 32];
const n = 65536;
const C = 16;
const normal = { x: values(n, 1), dy: values(n, 2) };
const denormal = { x: normal.x.map((v) => v * DENORMAL), dy: normal.dy.map((v) => v * DENORMAL) };
const one = new Float32Array(C).fill(1);
const zero = new Float32Array(C);
const out = { y: new Float32Array(n), dx: new Float32Array(n), c: [0, 1, 2, 3].map(() => new Float32Array(C)) };
// Small scales keep the outputs denormal too (the costlier case on some CPUs).
const ops = {
  forwardTrain: (d: typeof normal) => forwardTrain(d.x, shape, { gamma: one.map(() => 1e-3), out: out.y, saveMean: out.c[0], saveInvStd: out.c[1] }),
  forwardInference: (d: typeof normal) => forwardInference(d.x, shape, { runningMean: zero, runningVar: one, out: out.y }),
  backward: (d: typeof normal) => backward(d.dy, d.x, shape, { saveMean: zero, saveInvStd: one, dx: out.dx, dgamma: out.c[2], dbeta: out.c[3] }),
};

const info = backendInfo();
console.log(`${machine().cpu}, ${info.backend} ${info.isa}, ${info.threads} thread(s), [${shape.join(', ')}]`);
for (const [name, call] of Object.entries(ops)) {
  // The fastest of 7 samples of 50 calls, normal and denormal interleaved (robust to load).
  const best = { normal: Infinity, denormal: Infinity };
  for (let sample = 0; sample < 7; sample++) {
    for (const kind of ['normal', 'denormal'] as const) {
      const started = performance.now();
      for (let i = 0; i < 50; i++) call(kind === 'normal' ? normal : denormal);
      best[kind] = Math.min(best[kind], (performance.now() - started) / 50);
    }
  }
  const us = (ms: number) => `${(ms * 1e3).toFixed(1)} us`;
  console.log(`${name}: normal ${us(best.normal)}, denormal ${us(best.denormal)}, ratio ${(best.denormal / best.normal).toFixed(2)}`);
}
