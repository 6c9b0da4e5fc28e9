/**
 * backward with the ReLU mask and dresidual against central differences of the fused
 * forwardTrain: for L = sum(w * relu(bn(x) + z)), backward(dy = w) must give dL/dx, dL/dgamma,
 * dL/dbeta and dL/dz. The residual z is chosen so that every pre-activation sits at least 0.3
 * away from the ReLU's kink, beyond what a step of h = 1e-2 moves it.
 */
import { describe, test } from 'vitest';

import { backward, forwardTrain, type Activation } from '../../lib/index';
import { expectGradient, numericGradient, weightedSum } from '../helpers/gradients';
import { rng } from '../helpers/random';

const CASES = [
  { shape: [3, 2, 4], axis: 1 },
  { shape: [5, 3], axis: 1 },
  { shape: [2, 3, 2, 3], axis: -1 },
];

describe.each(CASES)('shape $shape axis $axis', ({ shape, axis }) => {
  const n = shape.reduce((p, d) => p * d, 1);
  const C = shape[axis < 0 ? axis + shape.length : axis];
  const r = rng(77 + n);
  const x = r.normals(n);
  const gamma = r.normals(C, 1, 0.2);
  const beta = r.normals(C);
  const w = r.normals(n);
  const eps = 1e-3;
  // pre = bn(x) + z lands on targets of either sign, |target| >= 0.3.
  const { y: bn } = forwardTrain(x, shape, { axis, gamma, beta, eps });
  const z = bn.map((v) => (r.uniform() < 0.5 ? -1 : 1) * (0.3 + Math.abs(r.normal())) - v);

  test.each<Activation>(['relu', 'identity'])('%s: dx, dgamma, dbeta and dresidual match central differences', (activation) => {
    const loss = (xv: Float32Array, g: Float32Array, b: Float32Array, res: Float32Array) =>
      weightedSum(forwardTrain(xv, shape, { axis, gamma: g, beta: b, eps, activation, residual: res }).y, w);
    const f = forwardTrain(x, shape, { axis, gamma, beta, eps, activation, residual: z });
    const grads = backward(w, x, shape, {
      axis, gamma, saveMean: f.saveMean, saveInvStd: f.saveInvStd, activation, reluMask: f.reluMask, dresidual: true,
    });
    expectGradient(grads.dx, numericGradient((v) => loss(v, gamma, beta, z), x), 'dx');
    expectGradient(grads.dgamma, numericGradient((v) => loss(x, v, beta, z), gamma), 'dgamma');
    expectGradient(grads.dbeta, numericGradient((v) => loss(x, gamma, v, z), beta), 'dbeta');
    expectGradient(grads.dresidual, numericGradient((v) => loss(x, gamma, beta, v), z), 'dresidual');
  });
});
