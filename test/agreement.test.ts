/**
 * Native against the JavaScript backend on the same validated calls: both must agree within
 * SPEC section 5's tolerances (each is also checked against the float64 reference elsewhere).
 */
import { describe, expect, test } from 'vitest';

import { backendInfo } from '../lib/index';
import { jsBackend } from '../lib/js-backend';
import { load } from '../lib/loader';
import { planBackward, planForwardInference, planForwardTrain } from '../lib/validate';
import { expectMaskOf } from './helpers/fused-reference';
import { rng } from './helpers/random';
import { expectElementwise, expectRelative, expectSum, geometryOf, refBackward } from './helpers/reference';

const native = load({ BATCHNORM_BACKEND: 'native' }).backend;
const f64 = (a: Float32Array) => Float64Array.from(a);

test('the native backend is loaded', () => expect(backendInfo().backend).toBe('native'));

describe.each([
  { shape: [32, 64, 14, 14], axis: 1 },
  { shape: [32, 14, 14, 64], axis: -1 },
  { shape: [512, 1000], axis: 1 },
  { shape: [3, 7, 5000], axis: 1 },
  { shape: [9, 13, 11, 3], axis: -1 },
])('$shape axis $axis', ({ shape, axis }) => {
  const n = shape.reduce((p, d) => p * d, 1);
  const C = shape[axis < 0 ? axis + shape.length : axis];
  const r = rng(n);
  const x = r.normals(n, 3, 2);
  const gamma = r.normals(C, 1, 0.2);
  const beta = r.normals(C);

  test('forwardTrain, forwardInference and backward agree', () => {
    const nt = planForwardTrain(x, shape, { axis, gamma, beta });
    const jt = planForwardTrain(x, shape, { axis, gamma, beta });
    native.forwardTrain(nt);
    jsBackend.forwardTrain(jt);
    expectElementwise(nt.y, f64(jt.y), 'y');
    expectRelative(nt.saveMean, jt.saveMean, 'saveMean', jt.saveInvStd.map((v) => 1 / v));
    expectRelative(nt.saveInvStd, jt.saveInvStd, 'saveInvStd');

    const stats = { axis, gamma, beta, runningMean: jt.saveMean, runningVar: jt.saveInvStd };
    const ni = planForwardInference(x, shape, stats);
    const ji = planForwardInference(x, shape, stats);
    native.forwardInference(ni);
    jsBackend.forwardInference(ji);
    expectElementwise(ni.y, f64(ji.y), 'inference y');

    const dy = r.normals(n);
    const saved = { axis, gamma, saveMean: jt.saveMean, saveInvStd: jt.saveInvStd };
    const nb = planBackward(dy, x, shape, saved);
    const jb = planBackward(dy, x, shape, saved);
    native.backward(nb);
    jsBackend.backward(jb);
    expectElementwise(nb.dx, f64(jb.dx), 'dx');
    // SPEC's dgamma/dbeta tolerance scales with sum |term|, taken from the float64 reference.
    const scales = refBackward(dy, x, geometryOf(shape, axis), saved);
    expectSum(nb.dbeta, f64(jb.dbeta), scales.dbetaScale, 'dbeta');
    expectSum(nb.dgamma, f64(jb.dgamma), scales.dgammaScale, 'dgamma');
  });

  // SPEC section 7: each backend's mask is the sign of its own y; backward runs from one mask,
  // so that both mask the same gradient.
  test('fused forwardTrain, forwardInference and backward (relu(bn(x) + z), the mask, dresidual) agree', () => {
    const fused = { axis, gamma, beta, activation: 'relu' as const, residual: r.normals(n) };
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
