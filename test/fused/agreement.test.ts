/**
 * Native against the JavaScript backend on the same validated fused calls (SPEC section 7):
 * y within SPEC section 5's tolerance, each backend's mask the sign of its own y, and the
 * backward from one mask (so both mask the same gradient) within tolerance, dresidual exactly.
 */
import { describe, expect, test } from 'vitest';

import { backendInfo } from '../../lib/index';
import { jsBackend } from '../../lib/js-backend';
import { load } from '../../lib/loader';
import { planBackward, planForwardInference, planForwardTrain } from '../../lib/validate';
import { expectMaskOf } from '../helpers/fused-reference';
import { rng } from '../helpers/random';
import { expectElementwise, expectSum, geometryOf, refBackward } from '../helpers/reference';

const native = load({ BATCHNORM_BACKEND: 'native' }).backend;
const f64 = (a: Float32Array) => Float64Array.from(a);

test('the native backend is loaded', () => expect(backendInfo().backend).toBe('native'));

describe.each([
  { shape: [32, 64, 14, 14], axis: 1 },
  { shape: [32, 14, 14, 64], axis: -1 },
  { shape: [512, 1000], axis: 1 },
  { shape: [3, 7, 5001], axis: 1 },
  { shape: [9, 13, 11, 3], axis: -1 },
])('$shape axis $axis', ({ shape, axis }) => {
  const n = shape.reduce((p, d) => p * d, 1);
  const C = shape[axis < 0 ? axis + shape.length : axis];
  const r = rng(n + 5);
  const x = r.normals(n, 3, 2);
  const z = r.normals(n);
  const gamma = r.normals(C, 1, 0.2);
  const beta = r.normals(C);
  const fused = { axis, gamma, beta, activation: 'relu' as const, residual: z };

  test('fused forwardTrain, forwardInference and backward agree', () => {
    const nt = planForwardTrain(x, shape, fused);
    const jt = planForwardTrain(x, shape, fused);
    native.forwardTrain(nt);
    jsBackend.forwardTrain(jt);
    expectElementwise(nt.y, f64(jt.y), 'y');
    expectMaskOf(nt.reluMask!, nt.y, 'native reluMask');
    expectMaskOf(jt.reluMask!, jt.y, 'JS reluMask');

    const running = { runningMean: jt.saveMean, runningVar: jt.saveInvStd };
    const ni = planForwardInference(x, shape, { ...fused, ...running });
    const ji = planForwardInference(x, shape, { ...fused, ...running });
    native.forwardInference(ni);
    jsBackend.forwardInference(ji);
    expectElementwise(ni.y, f64(ji.y), 'inference y');

    const dy = r.normals(n);
    const saved = { axis, gamma, saveMean: jt.saveMean, saveInvStd: jt.saveInvStd, activation: 'relu' as const, reluMask: jt.reluMask!, dresidual: true };
    const nb = planBackward(dy, x, shape, saved);
    const jb = planBackward(dy, x, shape, saved);
    native.backward(nb);
    jsBackend.backward(jb);
    expectElementwise(nb.dx, f64(jb.dx), 'dx');
    expect(nb.dresidual).toEqual(jb.dresidual);
    const scales = refBackward(jb.dresidual!, x, geometryOf(shape, axis), saved);
    expectSum(nb.dbeta, f64(jb.dbeta), scales.dbetaScale, 'dbeta');
    expectSum(nb.dgamma, f64(jb.dgamma), scales.dgammaScale, 'dgamma');
  });
});
