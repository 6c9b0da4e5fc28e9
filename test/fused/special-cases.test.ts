/**
 * SPEC section 7's edge cases: relu(-0) = +0, NaN stays NaN (mask bit 0), a NaN gradient where
 * the ReLU was off gives 0, the in-place pairs (out = residual, dresidual = dy, dx = dy beside a
 * dresidual) against the out-of-place results bit for bit, given destinations returned as
 * given, and a garbage mask destination fully overwritten. Runs once per backend and ISA.
 */
import { describe, expect, test } from 'vitest';

import { backward, forwardInference, forwardTrain } from '../../lib/index';
import { expectMaskOf, maskBit } from '../helpers/fused-reference';
import { rng } from '../helpers/random';
import { expectSameBits, geometryOf } from '../helpers/reference';

const LAYOUTS = [
  { name: 'NCHW 14x14', shape: [3, 4, 14, 14], axis: 1 },
  { name: 'NHWC', shape: [3, 7, 5, 6], axis: -1 },
  { name: 'NC', shape: [37, 11], axis: 1 },
];

describe.each(LAYOUTS)('$name', ({ shape, axis }) => {
  const n = shape.reduce((p, d) => p * d, 1);
  const C = shape[axis < 0 ? axis + shape.length : axis];
  const r = rng(n);
  const x = r.normals(n, 1, 2);
  const z = r.normals(n);
  const dy = r.normals(n);
  const gamma = r.normals(C, 1, 0.3);
  const beta = r.normals(C);
  const relu = { axis, gamma, beta, activation: 'relu' as const };

  test('relu(-0) is +0 and identity keeps -0; a -0 residual too', () => {
    // x equal to the running mean and gamma < 0: (x - mean) * scale = -0; beta = -0.
    const runningMean = new Float32Array(C).fill(1.5);
    const runningVar = new Float32Array(C).fill(1);
    const constant = new Float32Array(n).fill(1.5);
    const stats = { axis, gamma: new Float32Array(C).fill(-2), beta: new Float32Array(C).fill(-0), runningMean, runningVar };
    const identity = forwardInference(constant, shape, stats);
    expect(identity.every((v) => Object.is(v, -0))).toBe(true);
    const negativeZero = new Float32Array(n).fill(-0);
    for (const residual of [undefined, negativeZero]) {
      const y = forwardInference(constant, shape, { ...stats, activation: 'relu', residual });
      expect(y.every((v) => Object.is(v, 0)), `residual ${residual ? '-0' : 'none'}`).toBe(true);
    }
  });

  test('NaN stays NaN through the ReLU, with mask bit 0, in its channel only', () => {
    const poisoned = Float32Array.from(x);
    poisoned[0] = NaN; // channel 0: its mean, hence every y in it, is NaN
    const out = forwardTrain(poisoned, shape, relu);
    const { inner } = geometryOf(shape, axis);
    for (let i = 0; i < n; i++) {
      const c = Math.floor(i / inner) % C;
      if (c === 0 && !Number.isNaN(out.y[i])) expect.fail(`y[${i}] = ${out.y[i]} in the NaN channel`);
      if (c !== 0 && Number.isNaN(out.y[i])) expect.fail(`y[${i}] is NaN outside the NaN channel`);
    }
    expectMaskOf(out.reluMask, out.y, 'reluMask');
    // A NaN residual makes that element NaN, mask bit 0.
    const residual = Float32Array.from(z);
    residual[5] = NaN;
    const withNaN = forwardTrain(x, shape, { ...relu, residual });
    expect(withNaN.y[5]).toBeNaN();
    expect(maskBit(withNaN.reluMask, 5)).toBe(0);
  });

  test('backward: a NaN gradient where the ReLU was off gives exactly what a 0 there gives', () => {
    const { saveMean, saveInvStd, reluMask } = forwardTrain(x, shape, relu);
    const nanWhereOff = dy.map((d, i) => (maskBit(reluMask, i) ? d : NaN));
    const zeroWhereOff = dy.map((d, i) => (maskBit(reluMask, i) ? d : 0));
    const opts = { axis, gamma, saveMean, saveInvStd, activation: 'relu' as const, reluMask };
    const got = backward(nanWhereOff, x, shape, { ...opts, dresidual: true });
    const want = backward(zeroWhereOff, x, shape, { ...opts, dresidual: true });
    expectSameBits(got.dx, want.dx, 'dx');
    expectSameBits(got.dgamma, want.dgamma, 'dgamma');
    expectSameBits(got.dbeta, want.dbeta, 'dbeta');
    expectSameBits(got.dresidual, want.dresidual, 'dresidual');
  });

  test('forward with out = residual matches the out-of-place call bit for bit (train and inference)', () => {
    const expected = forwardTrain(x, shape, { ...relu, residual: z });
    const inPlace = Float32Array.from(z);
    const got = forwardTrain(x, shape, { ...relu, residual: inPlace, out: inPlace });
    expect(got.y).toBe(inPlace);
    expectSameBits(inPlace, expected.y, 'y');
    expect(got.reluMask).toEqual(expected.reluMask);

    const running = { runningMean: expected.saveMean, runningVar: r.normals(C).map(Math.abs) };
    const wanted = forwardInference(x, shape, { ...relu, ...running, residual: z });
    const inference = Float32Array.from(z);
    expect(forwardInference(x, shape, { ...relu, ...running, residual: inference, out: inference })).toBe(inference);
    expectSameBits(inference, wanted, 'inference y');
  });

  test('forward with out = x beside a residual matches the out-of-place call', () => {
    const expected = forwardTrain(x, shape, { ...relu, residual: z });
    const inPlace = Float32Array.from(x);
    forwardTrain(inPlace, shape, { ...relu, residual: z, out: inPlace });
    expectSameBits(inPlace, expected.y, 'y');
  });

  test('backward with dresidual = dy, and with dx = dy beside a dresidual, match the out-of-place call', () => {
    const { saveMean, saveInvStd, reluMask } = forwardTrain(x, shape, { ...relu, residual: z });
    const opts = { axis, gamma, saveMean, saveInvStd };
    for (const fused of [{ activation: 'relu' as const, reluMask }, {}]) {
      const expected = backward(dy, x, shape, { ...opts, ...fused, dresidual: true });
      const shared = Float32Array.from(dy);
      const got = backward(shared, x, shape, { ...opts, ...fused, dresidual: shared });
      expect(got.dresidual).toBe(shared);
      expectSameBits(shared, expected.dresidual, 'dresidual = dy');
      expectSameBits(got.dx, expected.dx, 'dx beside dresidual = dy');
      const dx = Float32Array.from(dy);
      const dresidual = new Float32Array(n);
      backward(dx, x, shape, { ...opts, ...fused, dx, dresidual });
      expectSameBits(dx, expected.dx, 'dx = dy');
      expectSameBits(dresidual, expected.dresidual, 'dresidual beside dx = dy');
    }
  });

  test('destinations are returned as given, and a garbage mask destination is fully rewritten', () => {
    const reluMask = new Uint8Array(Math.ceil(n / 8)).fill(0xff);
    const out = forwardTrain(x, shape, { ...relu, reluMask });
    expect(out.reluMask).toBe(reluMask);
    expectMaskOf(reluMask, out.y, 'reluMask');
    const dresidual = new Float32Array(n).fill(NaN);
    const b = backward(dy, x, shape, { axis, gamma, saveMean: out.saveMean, saveInvStd: out.saveInvStd, activation: 'relu', reluMask, dresidual });
    expect(b.dresidual).toBe(dresidual);
    expect(dresidual.some(Number.isNaN)).toBe(false);
    // Without dresidual, the result has none; the plain call still returns none either.
    expect(backward(dy, x, shape, { axis, saveMean: out.saveMean, saveInvStd: out.saveInvStd, activation: 'relu', reluMask }).dresidual).toBeUndefined();
  });
});
