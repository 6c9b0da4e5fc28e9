/**
 * Every operation against the float64 reference with SPEC section 5's tolerances, over fixed
 * edge-case shapes and a seeded random sweep. This file runs once per backend and ISA (see
 * vitest.config.ts); `backendUnderTest` says which.
 */
import { describe, expect, test } from 'vitest';

import { backendInfo, backward, forwardInference, forwardTrain } from '../lib/index';
import { FIXED_CASES, label, randomCases, type ShapeCase } from './helpers/cases';
import { rng } from './helpers/random';
import {
  expectElementwise,
  expectRelative,
  expectSum,
  geometryOf,
  refBackward,
  refForwardTrain,
  refInference,
} from './helpers/reference';

const CASES: ShapeCase[] = [...FIXED_CASES, ...randomCases(20261126, 24)];

test('runs on the backend and ISA this project asked for', () => {
  const info = backendInfo();
  if (process.env.BATCHNORM_BACKEND === 'js') expect(info.backend).toBe('js');
  else expect(info.backend).toBe('native');
  if (process.env.BATCHNORM_ISA) expect(info.isa).toBe(process.env.BATCHNORM_ISA);
});

describe.each(CASES.map((c, i) => ({ ...c, i, name: label(c) })))('$name', ({ shape, axis, i }) => {
  const g = geometryOf(shape, axis);
  const n = shape.reduce((p, d) => p * d, 1);
  const r = rng(1000 + i);
  const C = g.channels;
  const affine = i % 3 !== 0;
  const gamma = affine ? r.normals(C, 1, 0.5) : undefined;
  const beta = affine ? r.normals(C, 0, 0.5) : undefined;
  const x = new Float32Array(n);
  // Each channel gets its own offset and scale, so per-channel bookkeeping errors show.
  const offsets = r.normals(C, 0, 3);
  const scales = Float32Array.from(r.normals(C, 1, 0.5), (v) => Math.abs(v) + 0.1);
  for (let k = 0; k < n; k++) {
    const c = Math.floor(k / g.inner) % C;
    x[k] = offsets[c] + scales[c] * r.normal();
  }

  test('forwardTrain: y, saved and running statistics', () => {
    const runningMean = r.normals(C);
    const runningVar = Float32Array.from(r.normals(C), (v) => Math.abs(v) + 0.5);
    const rm0 = Float64Array.from(runningMean);
    const rv0 = Float64Array.from(runningVar);
    const momentum = 0.1;
    const out = forwardTrain(x, shape, { axis, gamma, beta, runningMean, runningVar, momentum });
    const ref = refForwardTrain(x, g, { gamma, beta });
    const std = ref.variance.map(Math.sqrt);
    expectElementwise(out.y, ref.y, 'y');
    expectRelative(out.saveMean, ref.mean, 'saveMean', std);
    expectRelative(out.saveInvStd, ref.invStd, 'saveInvStd');
    const M = g.outer * g.inner;
    const wantMean = rm0.map((v, c) => (1 - momentum) * v + momentum * ref.mean[c]);
    const wantVar = rv0.map((v, c) => (1 - momentum) * v + (momentum * ref.variance[c] * M) / (M - 1));
    expectRelative(runningMean, wantMean, 'runningMean', std);
    expectRelative(runningVar, wantVar, 'runningVar');
  });

  test('forwardInference', () => {
    const runningMean = r.normals(C, 0, 2);
    const runningVar = Float32Array.from(r.normals(C), (v) => Math.abs(v) + 0.1);
    const y = forwardInference(x, shape, { axis, gamma, beta, runningMean, runningVar, eps: 1e-3 });
    expectElementwise(y, refInference(x, g, { runningMean, runningVar, gamma, beta, eps: 1e-3 }), 'y');
  });

  test.each([false, true])('backward (useGlobalStats %s)', (useGlobalStats) => {
    const { saveMean, saveInvStd } = forwardTrain(x, shape, { axis, gamma, beta });
    const dy = r.normals(n);
    const out = backward(dy, x, shape, { axis, gamma, saveMean, saveInvStd, useGlobalStats });
    const ref = refBackward(dy, x, g, { saveMean, saveInvStd, gamma, useGlobalStats });
    expectElementwise(out.dx, ref.dx, 'dx');
    expectSum(out.dgamma, ref.dgamma, ref.dgammaScale, 'dgamma');
    expectSum(out.dbeta, ref.dbeta, ref.dbetaScale, 'dbeta');
  });
});
