/**
 * SPEC section 7 against the float64 reference of the unfused composition (BN, then the
 * residual add and the ReLU; the ReLU's gradient, then BN's backward), with SPEC section 5's
 * tolerances: every combination of activation and residual, forward train and inference,
 * backward with batch and with constant statistics, in both layouts. The shapes aim at the
 * mask's byte edges: runs whose length is not a multiple of 8 (14x14 = 196), odd sizes, SIMD
 * tails, long runs cut into pieces, rows folded with a remainder. Runs once per backend and ISA.
 */
import { describe, expect, test } from 'vitest';

import { backward, forwardInference, forwardTrain } from '../../lib/index';
import { label, randomCases, type ShapeCase } from '../helpers/cases';
import { expectMaskOf, refEpilogue, refFusedBackward, type Activation } from '../helpers/fused-reference';
import { rng } from '../helpers/random';
import { expectElementwise, expectSum, geometryOf, refForwardTrain, refInference } from '../helpers/reference';

const CASES: ShapeCase[] = [
  { shape: [4, 6, 14, 14], axis: 1 }, // NCHW runs of 196 floats, in memory order
  { shape: [2, 3, 1500], axis: 1 }, // runs of 1500, channel by channel
  { shape: [2, 3, 5001], axis: 1 }, // long runs cut into pieces, odd total
  { shape: [9, 5, 64], axis: 1 }, // the shortest runs handled as runs
  { shape: [70, 3, 63], axis: 1 }, // the longest runs still handled as rows
  { shape: [3, 5, 7], axis: 1 }, // 105 elements, rows of 35
  { shape: [33, 19], axis: 1 }, // NC, rows with a vector tail
  { shape: [1003, 5], axis: 1 }, // narrow rows folded, with a remainder
  { shape: [5, 4100], axis: 1 }, // rows wider than one column block
  { shape: [5, 9, 9, 13], axis: -1 }, // NHWC
  { shape: [1, 1, 3001], axis: 1 }, // one channel: one long run
  { shape: [2, 3], axis: 1 }, // M = 2
  ...randomCases(20261130, 6),
];

const COMBINATIONS: Array<{ activation: Activation; residual: boolean }> = [
  { activation: 'relu', residual: false },
  { activation: 'relu', residual: true },
  { activation: 'identity', residual: true },
];

describe.each(CASES.map((c, i) => ({ ...c, i, name: label(c) })))('$name', ({ shape, axis, i }) => {
  const g = geometryOf(shape, axis);
  const n = shape.reduce((p, d) => p * d, 1);
  const C = g.channels;
  const r = rng(7000 + i);
  const gamma = r.normals(C, 1, 0.5);
  const beta = r.normals(C, 0, 0.5);
  const x = r.normals(n, 2, 3);
  const z = r.normals(n); // the residual
  const dy = r.normals(n);

  describe.each(COMBINATIONS)('$activation, residual $residual', ({ activation, residual: withResidual }) => {
    const residual = withResidual ? z : undefined;

    test('forwardTrain: y, the mask and the statistics; backward with the mask: dx, dgamma, dbeta, dresidual', () => {
      const out = forwardTrain(x, shape, { axis, gamma, beta, activation, residual });
      const ref = refForwardTrain(x, g, { gamma, beta });
      expectElementwise(out.y, refEpilogue(ref.y, residual, activation), 'y');
      if (activation === 'relu') expectMaskOf(out.reluMask, out.y, 'reluMask');
      else expect(out.reluMask).toBeUndefined();
      // The statistics are those of the plain forward, bit for bit.
      const plain = forwardTrain(x, shape, { axis, gamma, beta });
      expect(out.saveMean).toEqual(plain.saveMean);
      expect(out.saveInvStd).toEqual(plain.saveInvStd);

      for (const useGlobalStats of [false, true]) {
        const stats = { saveMean: out.saveMean, saveInvStd: out.saveInvStd, gamma, useGlobalStats };
        const b = backward(dy, x, shape, { axis, ...stats, activation, reluMask: out.reluMask, dresidual: true });
        const rb = refFusedBackward(dy, x, g, { ...stats, reluMask: out.reluMask });
        const what = useGlobalStats ? ' (constant statistics)' : '';
        expectElementwise(b.dx, rb.dx, `dx${what}`);
        expectSum(b.dgamma, rb.dgamma, rb.dgammaScale, `dgamma${what}`);
        expectSum(b.dbeta, rb.dbeta, rb.dbetaScale, `dbeta${what}`);
        expect(b.dresidual, `dresidual${what}`).toEqual(rb.dresidual); // g exactly
      }
    });

    test('forwardInference', () => {
      const runningMean = r.normals(C, 2, 1);
      const runningVar = Float32Array.from(r.normals(C), (v) => Math.abs(v) + 0.5);
      const y = forwardInference(x, shape, { axis, gamma, beta, runningMean, runningVar, activation, residual });
      const ref = refInference(x, g, { runningMean, runningVar, gamma, beta });
      expectElementwise(y, refEpilogue(ref, residual, activation), 'y');
    });
  });
});
