/** TensorFlow.js helpers for the batchnorm/tfjs tests: backends, data, and tolerances on tensors. */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'vitest';

import type { Rng } from './random';
import { expectElementwise } from './reference';

export { tf };

/** The backends batchnorm/tfjs takes over; each test file runs on both. */
export const BACKENDS = ['cpu', 'wasm'] as const;

export async function useBackend(name: (typeof BACKENDS)[number]) {
  await tf.setBackend(name);
  await tf.ready();
}

/** The values of a float32 tensor. */
export const values = (t: tf.Tensor) => t.dataSync() as Float32Array;

/** A tensor of N(mean, std^2) values. */
export function normalTensor(r: Rng, shape: number[], mean = 0, std = 1): tf.Tensor {
  return tf.tensor(r.normals(shape.reduce((a, b) => a * b, 1), mean, std), shape);
}

/** SPEC section 5's elementwise bound, max |err| <= 2e-5 * max(1, max |want|), on two tensors. */
export function expectCloseTensors(actual: tf.Tensor, want: tf.Tensor, what: string) {
  expect(actual.shape, what).toEqual(want.shape);
  expectElementwise(values(actual), Float64Array.from(values(want)), what);
}

/** Largest |a - b| between two tensors' values. */
export function maxAbsDifference(a: tf.Tensor, b: tf.Tensor): number {
  const [u, v] = [values(a), values(b)];
  let worst = 0;
  for (let k = 0; k < u.length; k++) worst = Math.max(worst, Math.abs(u[k] - v[k]));
  return worst;
}
