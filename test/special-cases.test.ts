/**
 * The cases SPEC section 5 singles out: means 10^4 times the standard deviation, zero-variance
 * channels, affine off, in-place calls, destinations, running statistics at momentum 0, 0.1
 * and 1, biased running variance, shared and offset buffers, and NaN/Inf propagation.
 * Runs once per backend and ISA.
 */
import { describe, expect, test } from 'vitest';

import { backward, forwardInference, forwardTrain } from '../lib/index';
import { rng } from './helpers/random';
import {
  expectElementwise,
  expectRelative,
  expectSum,
  geometryOf,
  refBackward,
  refForwardTrain,
} from './helpers/reference';

const LAYOUTS = [
  { name: 'NCHW', shape: [4, 6, 33, 35], axis: 1 },
  { name: 'NHWC', shape: [4, 33, 35, 6], axis: -1 },
  { name: 'NC', shape: [3000, 19], axis: 1 },
  { name: 'long runs', shape: [2, 3, 9000], axis: 1 },
];

describe.each(LAYOUTS)('huge means ($name)', ({ shape, axis }) => {
  const g = geometryOf(shape, axis);
  const n = shape.reduce((p, d) => p * d, 1);
  const r = rng(7);
  // mean / std = 10^4, with both signs and two magnitudes.
  const means = [1e4, -1e4, 10, 1e4, -10, 1e4].slice(0, g.channels);
  const stds = [1, 1, 1e-3, 1, 1e-3, 1];
  const x = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const c = Math.floor(k / g.inner) % g.channels;
    x[k] = means[c % means.length] + stds[c % stds.length] * r.normal();
  }

  test('forwardTrain and backward stay within SPEC tolerances', () => {
    const gamma = r.normals(g.channels, 1, 0.3);
    const beta = r.normals(g.channels);
    const out = forwardTrain(x, shape, { axis, gamma, beta });
    const ref = refForwardTrain(x, g, { gamma, beta });
    expectElementwise(out.y, ref.y, 'y');
    expectRelative(out.saveMean, ref.mean, 'saveMean');
    expectRelative(out.saveInvStd, ref.invStd, 'saveInvStd');

    const dy = r.normals(n);
    const b = backward(dy, x, shape, { axis, gamma, saveMean: out.saveMean, saveInvStd: out.saveInvStd });
    const rb = refBackward(dy, x, g, { gamma, saveMean: out.saveMean, saveInvStd: out.saveInvStd });
    expectElementwise(b.dx, rb.dx, 'dx');
    expectSum(b.dgamma, rb.dgamma, rb.dgammaScale, 'dgamma');
    expectSum(b.dbeta, rb.dbeta, rb.dbetaScale, 'dbeta');
  });
});

describe.each(LAYOUTS)('zero-variance channels ($name)', ({ shape, axis }) => {
  const g = geometryOf(shape, axis);
  const n = shape.reduce((p, d) => p * d, 1);
  const x = new Float32Array(n);
  const r = rng(8);
  for (let k = 0; k < n; k++) {
    const c = Math.floor(k / g.inner) % g.channels;
    x[k] = c % 2 === 0 ? 3.25 * (c + 1) : r.normal(); // even channels are constant
  }

  test('give y = beta exactly and invStd = 1/sqrt(eps)', () => {
    const beta = r.normals(g.channels);
    const eps = 1e-3;
    const out = forwardTrain(x, shape, { axis, beta, eps });
    for (let c = 0; c < g.channels; c += 2) {
      expect(out.saveMean[c]).toBe(3.25 * (c + 1));
      expect(Math.abs(out.saveInvStd[c] * Math.sqrt(eps) - 1)).toBeLessThan(1e-6);
    }
    for (let k = 0; k < n; k++) {
      const c = Math.floor(k / g.inner) % g.channels;
      if (c % 2 === 0 && out.y[k] !== beta[c]) expect.fail(`y[${k}] = ${out.y[k]}, want beta ${beta[c]}`);
    }
    const dy = r.normals(n);
    const b = backward(dy, x, shape, { axis, saveMean: out.saveMean, saveInvStd: out.saveInvStd });
    const rb = refBackward(dy, x, g, { saveMean: out.saveMean, saveInvStd: out.saveInvStd });
    expectElementwise(b.dx, rb.dx, 'dx');
  });
});

describe('destinations and in-place calls', () => {
  const shape = [5, 7, 6, 6];
  const n = 5 * 7 * 36;
  const r = rng(9);
  const x = r.normals(n, 2, 3);
  const gamma = r.normals(7);
  const beta = r.normals(7);

  test('forwardTrain returns the given destinations, and out = x matches out-of-place bitwise', () => {
    const expected = forwardTrain(x, shape, { gamma, beta });
    const dest = { out: new Float32Array(n), saveMean: new Float32Array(7), saveInvStd: new Float32Array(7) };
    const got = forwardTrain(x, shape, { gamma, beta, ...dest });
    expect(got.y).toBe(dest.out);
    expect(got.saveMean).toBe(dest.saveMean);
    expect(got.saveInvStd).toBe(dest.saveInvStd);
    const inPlace = Float32Array.from(x);
    const result = forwardTrain(inPlace, shape, { gamma, beta, out: inPlace });
    expect(result.y).toBe(inPlace);
    expect(inPlace).toEqual(expected.y);
    expect(result.saveMean).toEqual(expected.saveMean);
  });

  test('forwardInference in place', () => {
    const runningMean = r.normals(7);
    const runningVar = Float32Array.from(r.normals(7), Math.abs);
    const expected = forwardInference(x, shape, { runningMean, runningVar, gamma, beta });
    const inPlace = Float32Array.from(x);
    expect(forwardInference(inPlace, shape, { runningMean, runningVar, gamma, beta, out: inPlace })).toBe(inPlace);
    expect(inPlace).toEqual(expected);
  });

  test('backward returns the given destinations, and dx = dy matches bitwise', () => {
    const { saveMean, saveInvStd } = forwardTrain(x, shape, { gamma, beta });
    const dy = r.normals(n);
    const expected = backward(dy, x, shape, { gamma, saveMean, saveInvStd });
    const dest = { dx: new Float32Array(n), dgamma: new Float32Array(7), dbeta: new Float32Array(7) };
    const got = backward(dy, x, shape, { gamma, saveMean, saveInvStd, ...dest });
    expect(got.dx).toBe(dest.dx);
    expect(got.dgamma).toBe(dest.dgamma);
    expect(got.dbeta).toBe(dest.dbeta);
    const inPlace = Float32Array.from(dy);
    expect(backward(inPlace, x, shape, { gamma, saveMean, saveInvStd, dx: inPlace }).dx).toBe(inPlace);
    expect(inPlace).toEqual(expected.dx);
  });

  test('SharedArrayBuffer-backed arrays at odd byte offsets', () => {
    const shared = new Float32Array(new SharedArrayBuffer(4 * (n + 3)), 4 * 3, n);
    shared.set(x);
    const outBuffer = new ArrayBuffer(4 * (n + 1));
    const out = new Float32Array(outBuffer, 4, n);
    const expected = forwardTrain(x, shape, { gamma, beta });
    forwardTrain(shared, shape, { gamma, beta, out });
    expect(out).toEqual(expected.y);
  });
});

describe('running statistics', () => {
  const shape = [50, 3, 4];
  const g = geometryOf(shape);
  const x = rng(10).normals(600, 1, 2);
  const ref = refForwardTrain(x, g);
  const M = g.outer * g.inner;

  test.each([0, 0.1, 1])('momentum %s (unbiased)', (momentum) => {
    const runningMean = new Float32Array([0.5, -1, 2]);
    const runningVar = new Float32Array([1, 2, 3]);
    const before = [Float64Array.from(runningMean), Float64Array.from(runningVar)];
    forwardTrain(x, shape, { runningMean, runningVar, momentum });
    if (momentum === 0) {
      expect(runningMean).toEqual(new Float32Array([0.5, -1, 2]));
      expect(runningVar).toEqual(new Float32Array([1, 2, 3]));
    }
    const mix = (old: Float64Array, batch: ArrayLike<number>) => old.map((v, c) => (1 - momentum) * v + momentum * batch[c]);
    expectRelative(runningMean, mix(before[0], ref.mean), 'runningMean');
    expectRelative(runningVar, mix(before[1], Array.from(ref.variance, (v) => (v * M) / (M - 1))), 'runningVar');
  });

  test('unbiased: false takes the biased batch variance (Keras, ONNX)', () => {
    const runningVar = new Float32Array(3);
    forwardTrain(x, shape, { runningVar, momentum: 1, unbiased: false });
    expectRelative(runningVar, ref.variance, 'runningVar');
  });
});

describe('NaN and Infinity propagate', () => {
  test.each([
    { name: 'NCHW', shape: [3, 4, 50], axis: 1 },
    { name: 'NC', shape: [150, 4], axis: 1 },
  ])('$name: only the poisoned channel is non-finite', ({ shape, axis }) => {
    const g = geometryOf(shape, axis);
    const n = shape.reduce((p, d) => p * d, 1);
    const x = rng(11).normals(n);
    const clean = forwardTrain(x, shape, { axis });
    const poisoned = Float32Array.from(x);
    poisoned[(2 * g.channels + 1) * g.inner] = NaN; // o = 2, channel 1
    poisoned[2 * g.inner] = Infinity; // channel 2
    const out = forwardTrain(poisoned, shape, { axis });
    for (let k = 0; k < n; k++) {
      const c = Math.floor(k / g.inner) % g.channels;
      if (c === 1 || c === 2) expect(Number.isFinite(out.y[k])).toBe(false);
      else expect(out.y[k]).toBe(clean.y[k]);
    }
    expect(Number.isNaN(out.saveMean[1])).toBe(true);
    expect(Number.isFinite(out.saveMean[2])).toBe(false);
  });
});

describe('empty tensors', () => {
  test('forwardInference and backward accept a zero-size batch', () => {
    const ones = new Float32Array([1, 1, 1]);
    expect(forwardInference(new Float32Array(0), [0, 3], { runningMean: ones, runningVar: ones })).toEqual(new Float32Array(0));
    const b = backward(new Float32Array(0), new Float32Array(0), [0, 3, 4], { saveMean: ones, saveInvStd: ones });
    expect(b.dgamma).toEqual(new Float32Array(3));
    expect(b.dbeta).toEqual(new Float32Array(3));
  });
});
