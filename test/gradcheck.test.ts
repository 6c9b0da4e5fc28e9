/**
 * backward against finite differences of forwardTrain: for L = sum(w * y) with fixed random w,
 * backward(dy = w) must give dL/dx, dL/dgamma and dL/dbeta; and the same through the fused ReLU
 * and residual of SPEC section 7, with dL/dresidual. Central differences in float32
 * with h = 1e-2 are accurate to ~1e-3 here; a wrong formula is off by O(1).
 */
import { describe, expect, test } from 'vitest';

import { backward, forwardTrain, type Activation } from '../lib/index';
import { expectGradient, numericGradient, weightedSum } from './helpers/gradients';
import { rng } from './helpers/random';

const CASES = [
  { shape: [3, 2, 4], axis: 1 },
  { shape: [5, 3], axis: 1 },
  { shape: [2, 3, 2, 3], axis: -1 },
];

describe.each(CASES)('shape $shape axis $axis', ({ shape, axis }) => {
  const n = shape.reduce((p, d) => p * d, 1);
  const C = shape[axis < 0 ? axis + shape.length : axis];
  const r = rng(42 + n);
  const x = r.normals(n);
  const gamma = r.normals(C, 1, 0.3);
  const beta = r.normals(C);
  const w = r.normals(n);
  const loss = (xv: Float32Array, g: Float32Array, b: Float32Array) => {
    const { y } = forwardTrain(xv, shape, { axis, gamma: g, beta: b, eps: 1e-3 });
    return y.reduce((s, v, k) => s + v * w[k], 0);
  };
  /** Central difference of the loss in coordinate k of `which`. */
  const numeric = (which: 'x' | 'gamma' | 'beta', k: number) => {
    const h = 1e-2;
    const at = (delta: number) => {
      const xv = Float32Array.from(x);
      const g = Float32Array.from(gamma);
      const b = Float32Array.from(beta);
      ({ x: xv, gamma: g, beta: b })[which][k] += delta;
      return loss(xv, g, b);
    };
    return (at(h) - at(-h)) / (2 * h);
  };

  test('dx, dgamma, dbeta match central differences', () => {
    const { saveMean, saveInvStd } = forwardTrain(x, shape, { axis, gamma, beta, eps: 1e-3 });
    const g = backward(w, x, shape, { axis, gamma, saveMean, saveInvStd });
    const close = (analytic: number, fd: number, what: string) => {
      if (!(Math.abs(analytic - fd) <= 2e-3 + 2e-3 * Math.abs(fd))) {
        expect.fail(`${what}: backward ${analytic} vs finite difference ${fd}`);
      }
    };
    for (let k = 0; k < n; k++) close(g.dx[k], numeric('x', k), `dx[${k}]`);
    for (let c = 0; c < C; c++) {
      close(g.dgamma[c], numeric('gamma', c), `dgamma[${c}]`);
      close(g.dbeta[c], numeric('beta', c), `dbeta[${c}]`);
    }
  });

  // SPEC section 7: L = sum(w * act(bn(x) + z)), with z chosen so that every pre-activation
  // sits at least 0.3 from the ReLU's kink, beyond what a step of h moves it; backward with the
  // mask and dresidual must give dL/dx, dL/dgamma, dL/dbeta and dL/dz.
  test.each<Activation>(['relu', 'identity'])('fused %s with a residual: dx, dgamma, dbeta, dresidual match central differences', (activation) => {
    const { y: bn } = forwardTrain(x, shape, { axis, gamma, beta, eps: 1e-3 });
    const z = bn.map((v) => (r.uniform() < 0.5 ? -1 : 1) * (0.3 + Math.abs(r.normal())) - v);
    const fusedLoss = (xv: Float32Array, g: Float32Array, b: Float32Array, res: Float32Array) =>
      weightedSum(forwardTrain(xv, shape, { axis, gamma: g, beta: b, eps: 1e-3, activation, residual: res }).y, w);
    const f = forwardTrain(x, shape, { axis, gamma, beta, eps: 1e-3, activation, residual: z });
    const grads = backward(w, x, shape, { axis, gamma, saveMean: f.saveMean, saveInvStd: f.saveInvStd, activation, reluMask: f.reluMask, dresidual: true });
    expectGradient(grads.dx, numericGradient((v) => fusedLoss(v, gamma, beta, z), x), 'dx');
    expectGradient(grads.dgamma, numericGradient((v) => fusedLoss(x, v, beta, z), gamma), 'dgamma');
    expectGradient(grads.dbeta, numericGradient((v) => fusedLoss(x, gamma, v, z), beta), 'dbeta');
    expectGradient(grads.dresidual, numericGradient((v) => fusedLoss(x, gamma, beta, v), z), 'dresidual');
  });
});
