/**
 * Finite-difference checks: central differences of a scalar loss, compared with an analytic
 * gradient. In float32 with h = 1e-2 the difference is accurate to ~1e-3 here, while a wrong
 * formula is off by O(1).
 */
import { expect } from 'vitest';

/** d loss / d v[k] for every k, by central differences on a copy of `v`. */
export function numericGradient(loss: (v: Float32Array) => number, v: Float32Array, h = 1e-2): Float64Array {
  const grad = new Float64Array(v.length);
  for (let k = 0; k < v.length; k++) {
    const at = (delta: number) => {
      const copy = Float32Array.from(v);
      copy[k] += delta;
      return loss(copy);
    };
    grad[k] = (at(h) - at(-h)) / (2 * h);
  }
  return grad;
}

/** |analytic - numeric| <= tol * (1 + |numeric|) everywhere. */
export function expectGradient(analytic: ArrayLike<number>, numeric: ArrayLike<number>, what: string, tol = 2e-3) {
  expect(analytic.length, what).toBe(numeric.length);
  for (let k = 0; k < numeric.length; k++) {
    if (!(Math.abs(analytic[k] - numeric[k]) <= tol * (1 + Math.abs(numeric[k])))) {
      expect.fail(`${what}[${k}]: analytic ${analytic[k]} vs finite difference ${numeric[k]}`);
    }
  }
}

/** sum(w * y) in float64: the loss whose gradient with respect to y is w. */
export function weightedSum(y: ArrayLike<number>, w: ArrayLike<number>): number {
  let s = 0;
  for (let k = 0; k < y.length; k++) s += y[k] * w[k];
  return s;
}
