/**
 * The float64 reference: SPEC section 3's formulas, computed in two plain passes on the same
 * float32 inputs, and SPEC section 5's tolerances to judge a result against it.
 */
import { expect } from 'vitest';

export interface Geometry {
  outer: number;
  channels: number;
  inner: number;
}

export function geometryOf(shape: readonly number[], axis = 1): Geometry {
  const a = axis < 0 ? axis + shape.length : axis;
  const prod = (d: readonly number[]) => d.reduce((p, v) => p * v, 1);
  return { outer: prod(shape.slice(0, a)), channels: shape[a], inner: prod(shape.slice(a + 1)) };
}

/** Calls f(index, c) for every element, in memory order. */
function each(g: Geometry, f: (index: number, c: number) => void) {
  for (let o = 0; o < g.outer; o++)
    for (let c = 0; c < g.channels; c++)
      for (let i = 0; i < g.inner; i++) f((o * g.channels + c) * g.inner + i, c);
}

export interface RefTrain {
  y: Float64Array;
  mean: Float64Array;
  variance: Float64Array; // biased
  invStd: Float64Array;
}

export function refForwardTrain(
  x: Float32Array,
  g: Geometry,
  opts: { gamma?: Float32Array; beta?: Float32Array; eps?: number } = {},
): RefTrain {
  const C = g.channels;
  const M = g.outer * g.inner;
  const eps = opts.eps ?? 1e-5;
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  each(g, (k, c) => (mean[c] += x[k]));
  for (let c = 0; c < C; c++) mean[c] /= M;
  each(g, (k, c) => (variance[c] += (x[k] - mean[c]) ** 2));
  for (let c = 0; c < C; c++) variance[c] /= M;
  const invStd = variance.map((v) => 1 / Math.sqrt(v + eps));
  const y = new Float64Array(x.length);
  each(g, (k, c) => {
    y[k] = (opts.gamma ? opts.gamma[c] : 1) * (x[k] - mean[c]) * invStd[c] + (opts.beta ? opts.beta[c] : 0);
  });
  return { y, mean, variance, invStd };
}

export function refInference(
  x: Float32Array,
  g: Geometry,
  o: { runningMean: Float32Array; runningVar: Float32Array; gamma?: Float32Array; beta?: Float32Array; eps?: number },
): Float64Array {
  const y = new Float64Array(x.length);
  const eps = o.eps ?? 1e-5;
  each(g, (k, c) => {
    const scale = (o.gamma ? o.gamma[c] : 1) / Math.sqrt(o.runningVar[c] + eps);
    y[k] = (x[k] - o.runningMean[c]) * scale + (o.beta ? o.beta[c] : 0);
  });
  return y;
}

export interface RefBackward {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
  /** sum |dy * xhat| and sum |dy| per channel: the scales of SPEC's dgamma/dbeta tolerance. */
  dgammaScale: Float64Array;
  dbetaScale: Float64Array;
}

export function refBackward(
  dy: Float32Array,
  x: Float32Array,
  g: Geometry,
  o: { saveMean: Float32Array; saveInvStd: Float32Array; gamma?: Float32Array; useGlobalStats?: boolean },
): RefBackward {
  const C = g.channels;
  const M = g.outer * g.inner;
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  const dgammaScale = new Float64Array(C);
  const dbetaScale = new Float64Array(C);
  const xhat = (k: number, c: number) => (x[k] - o.saveMean[c]) * o.saveInvStd[c];
  each(g, (k, c) => {
    dbeta[c] += dy[k];
    dgamma[c] += dy[k] * xhat(k, c);
    dbetaScale[c] += Math.abs(dy[k]);
    dgammaScale[c] += Math.abs(dy[k] * xhat(k, c));
  });
  const dx = new Float64Array(x.length);
  each(g, (k, c) => {
    const gi = (o.gamma ? o.gamma[c] : 1) * o.saveInvStd[c];
    dx[k] = o.useGlobalStats ? dy[k] * gi : (gi / M) * (M * dy[k] - dbeta[c] - xhat(k, c) * dgamma[c]);
  });
  return { dx, dgamma, dbeta, dgammaScale, dbetaScale };
}

// ---- SPEC section 5 tolerances ----

/** y, dx: max |err| <= 2e-5 * max(1, max |ref|). */
export function expectElementwise(actual: Float32Array, ref: Float64Array, what: string) {
  expect(actual.length, what).toBe(ref.length);
  let maxRef = 1;
  for (const v of ref) maxRef = Math.max(maxRef, Math.abs(v));
  let worst = 0;
  let at = -1;
  for (let k = 0; k < ref.length; k++) {
    const e = Math.abs(actual[k] - ref[k]);
    if (!(e <= worst)) {
      worst = e;
      at = k;
    }
  }
  const bound = 2e-5 * maxRef;
  if (!(worst <= bound)) {
    expect.fail(`${what}: max |err| ${worst} at ${at} (got ${actual[at]}, want ${ref[at]}) exceeds ${bound}`);
  }
}

/** Per-channel statistics: relative error <= 1e-5 (plus a floor of 1e-6 * `scale`). */
export function expectRelative(actual: Float32Array, ref: ArrayLike<number>, what: string, scale: ArrayLike<number> = []) {
  for (let c = 0; c < ref.length; c++) {
    const bound = 1e-5 * Math.abs(ref[c]) + 1e-6 * (scale[c] ?? 0);
    const e = Math.abs(actual[c] - ref[c]);
    if (!(e <= bound)) expect.fail(`${what}[${c}]: got ${actual[c]}, want ${ref[c]} (|err| ${e} > ${bound})`);
  }
}

/** dgamma, dbeta: |err| <= 1e-5 * sum |term| + 1e-6. */
export function expectSum(actual: Float32Array, ref: Float64Array, scale: Float64Array, what: string) {
  for (let c = 0; c < ref.length; c++) {
    const bound = 1e-5 * scale[c] + 1e-6;
    const e = Math.abs(actual[c] - ref[c]);
    if (!(e <= bound)) expect.fail(`${what}[${c}]: got ${actual[c]}, want ${ref[c]} (|err| ${e} > ${bound})`);
  }
}

/** Bit-for-bit equality of two float arrays (fast; NaNs compare by payload). */
export function expectSameBits(actual: Float32Array, expected: Float32Array, what: string) {
  expect(actual.length, what).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let k = 0; k < a.length; k++) {
    if (a[k] !== b[k]) expect.fail(`${what}[${k}]: ${actual[k]} differs from ${expected[k]}`);
  }
}
