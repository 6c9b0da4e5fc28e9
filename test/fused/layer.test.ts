/**
 * The BatchNorm layer with SPEC section 7's fusion: the `activation` option, the residual that
 * `forward` adds and the gradient `backward` writes for it, in training mode (whole batch,
 * ghost batches, renorm), in eval mode (the mask recovered from y, checked by finite
 * differences), sync and async; the options, state dicts and folding; and the errors, with
 * nothing modified. Runs on the native and the JS backend.
 */
import { describe, expect, test } from 'vitest';

import { BatchNorm, BatchNormRangeError, BatchNormTypeError, backward, foldIntoFollowing, foldIntoPreceding, forwardTrain } from '../../lib/index';
import { expectGradient, numericGradient, weightedSum } from '../helpers/gradients';
import { linear, relu } from '../helpers/layers';
import { snapshot } from '../helpers/layer-state';
import { rng } from '../helpers/random';
import { expectElementwise, expectSameBits, geometryOf, refInference } from '../helpers/reference';

const shape = [8, 4, 5]; // 160 elements: mask bytes shared by channels, ghost batches of 2 rows
const n = 160;
const r = rng(31);
const x = r.normals(n, 1, 2);
const z = r.normals(n);
const dy = r.normals(n);

function reluLayer(options = {}) {
  const bn = new BatchNorm(4, { activation: 'relu', ...options });
  bn.gamma!.set(r.normals(4, 1, 0.3));
  bn.beta!.set(r.normals(4, 0, 0.3));
  return bn;
}

describe('training mode', () => {
  test('forward with a residual and backward with dresidual equal the fused functions', () => {
    const bn = reluLayer();
    const runningMean = bn.runningMean!.slice();
    const runningVar = bn.runningVar!.slice();
    const y = bn.forward(x, shape, { residual: z });
    const want = forwardTrain(x, shape, { gamma: bn.gamma!, beta: bn.beta!, runningMean, runningVar, activation: 'relu', residual: z });
    expectSameBits(y, want.y, 'y');
    expectSameBits(bn.runningVar!, runningVar, 'runningVar');
    const dresidual = new Float32Array(n);
    const dx = bn.backward(dy, { dresidual });
    const grads = backward(dy, x, shape, { gamma: bn.gamma!, saveMean: want.saveMean, saveInvStd: want.saveInvStd, activation: 'relu', reluMask: want.reluMask, dresidual: true });
    expectSameBits(dx, grads.dx, 'dx');
    expectSameBits(dresidual, grads.dresidual, 'dresidual');
    expectSameBits(bn.gradGamma!, grads.dgamma, 'gradGamma');
    expectSameBits(bn.gradBeta!, grads.dbeta, 'gradBeta');
  });

  test('identity with a residual: y = bn(x) + residual, and dresidual = dy (which may be dy itself)', () => {
    const bn = new BatchNorm(4);
    const y = bn.forward(x, shape, { residual: z });
    expectSameBits(y, forwardTrain(x, shape, { residual: z }).y, 'y');
    const shared = dy.slice();
    bn.backward(shared, { dresidual: shared });
    expectSameBits(shared, dy, 'dresidual = dy');
  });

  test('ghost batches: each one normalised, masked and given its residual on its own', () => {
    const bn = reluLayer({ virtualBatchSize: 2 });
    const gamma = bn.gamma!.slice();
    const y = bn.forward(x, shape, { residual: z });
    const dresidual = new Float32Array(n);
    const dx = bn.backward(dy, { dresidual });
    for (let k = 0; k < 4; k++) {
      const part = (a: Float32Array) => a.subarray(40 * k, 40 * (k + 1));
      const want = forwardTrain(part(x), [2, 4, 5], { gamma, beta: bn.beta!, activation: 'relu', residual: part(z) });
      expectSameBits(part(y), want.y, `y of ghost batch ${k}`);
      const grads = backward(part(dy), part(x), [2, 4, 5], { gamma, saveMean: want.saveMean, saveInvStd: want.saveInvStd, activation: 'relu', reluMask: want.reluMask, dresidual: true });
      expectSameBits(part(dx), grads.dx, `dx of ghost batch ${k}`);
      expectSameBits(part(dresidual), grads.dresidual, `dresidual of ghost batch ${k}`);
    }
  });

  test('renorm: the ReLU and residual come after the corrected affine map', () => {
    const bn = reluLayer({ renorm: { rmax: 1.5, dmax: 0.5 } });
    bn.runningMean!.fill(0.5);
    const y = bn.forward(x, shape, { residual: z });
    const plain = reluLayer({ renorm: { rmax: 1.5, dmax: 0.5 }, activation: 'identity' });
    plain.gamma!.set(bn.gamma!);
    plain.beta!.set(bn.beta!);
    plain.runningMean!.fill(0.5);
    const pre = plain.forward(x, shape, { residual: z });
    expectSameBits(y, Float32Array.from(pre, (v) => (v > 0 ? v : 0)), 'y');
    // y over the residual (in place): renorm's statistics pass writes nothing before z is read.
    const inPlace = reluLayer({ renorm: { rmax: 1.5, dmax: 0.5 } });
    inPlace.gamma!.set(bn.gamma!);
    inPlace.beta!.set(bn.beta!);
    inPlace.runningMean!.fill(0.5);
    const zy = z.slice();
    expect(inPlace.forward(x, shape, { residual: zy, out: zy })).toBe(zy);
    expectSameBits(zy, y, 'y in place over the residual');
  });

  test('async calls give the same bits', async () => {
    const [a, b] = [reluLayer({ seed: 1 }), reluLayer({ seed: 1 })];
    b.gamma!.set(a.gamma!);
    b.beta!.set(a.beta!);
    expectSameBits(await a.forwardAsync(x, shape, { residual: z }), b.forward(x, shape, { residual: z }), 'y');
    const [da, db] = [new Float32Array(n), new Float32Array(n)];
    expectSameBits(await a.backwardAsync(dy, { dresidual: da }), b.backward(dy, { dresidual: db }), 'dx');
    expectSameBits(da, db, 'dresidual');
  });
});

describe('eval mode', () => {
  test('forward equals inference + residual + ReLU, and backward (the mask from y) matches finite differences', () => {
    const bn = reluLayer();
    bn.runningMean!.set(r.normals(4, 1, 0.5));
    bn.runningVar!.set(r.normals(4).map((v) => 1 + v * v));
    bn.eval();
    const g = geometryOf(shape);
    const pre = refInference(x, g, { runningMean: bn.runningMean!, runningVar: bn.runningVar!, gamma: bn.gamma!, beta: bn.beta! });
    // A residual that keeps every pre-activation at least 0.3 from the kink.
    const residual = Float32Array.from(pre, (v, i) => (i % 3 === 0 ? -1 : 1) * (0.3 + Math.abs(z[i])) - v);
    const y = bn.forward(x, shape, { residual });
    expectElementwise(y, relu(pre.map((v, i) => v + residual[i])), 'y');
    const dresidual = new Float32Array(n);
    const dx = bn.backward(dy, { dresidual });
    const loss = (xv: Float32Array, res: Float32Array) => weightedSum(bn.forward(xv, shape, { residual: res }), dy);
    expectGradient(dx, numericGradient((v) => loss(v, residual), x), 'dx');
    expectGradient(dresidual, numericGradient((v) => loss(x, v), residual), 'dresidual');
  });
});

describe('options, state and folding', () => {
  test('activation is an option of both conventions, kept by options(); state dicts are unchanged', () => {
    const bn = reluLayer();
    expect(bn.activation).toBe('relu');
    expect(new BatchNorm(4, bn.options()).activation).toBe('relu');
    expect(BatchNorm.fromKeras(4, { activation: 'relu' }).activation).toBe('relu');
    expect(new BatchNorm(4).activation).toBe('identity');
    expect(Object.keys(bn.stateDict())).toEqual(Object.keys(new BatchNorm(4).stateDict()));
  });

  test('folds into the Linear before it (the ReLU stays after it), not into the one after it', () => {
    const bn = reluLayer();
    bn.runningMean!.set(r.normals(4));
    bn.eval();
    const layer = { weight: r.normals(4 * 6), shape: [4, 6], bias: r.normals(4) };
    const input = r.normals(10 * 6);
    const folded = foldIntoPreceding(layer, bn);
    const viaBn = bn.forward(Float32Array.from(linear(input, 10, layer.weight, layer.shape, layer.bias)), [10, 4]);
    expectElementwise(viaBn, relu(linear(input, 10, folded.weight, folded.shape, folded.bias)), 'relu(folded Linear)');
    expect(() => foldIntoFollowing(bn, { weight: r.normals(12), shape: [3, 4] })).toThrow(BatchNormRangeError);
  });
});

describe('errors: the right class and code, nothing modified', () => {
  // x and a residual 40 floats (one ghost batch) apart: within each ghost batch they are apart.
  const shared = new Float32Array(n + 40).fill(1);
  test.each([
    { name: 'activation not a string', make: () => new BatchNorm(4, { activation: 1 as never }), type: BatchNormTypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
    { name: "activation 'tanh'", make: () => new BatchNorm(4, { activation: 'tanh' as never }), type: BatchNormRangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
  ])('constructor: $name', ({ make, type, code }) => {
    expect(make).toThrow(type);
    expect(() => make()).toThrow(expect.objectContaining({ code }));
  });

  test.each([
    { name: 'residual of the wrong length', call: (bn: BatchNorm) => bn.forward(x, shape, { residual: z.subarray(1) }), type: BatchNormRangeError, code: 'ERR_BATCHNORM_LENGTH_MISMATCH' },
    { name: 'residual a Float64Array', call: (bn: BatchNorm) => bn.forward(x, shape, { residual: new Float64Array(n) as never }), type: BatchNormTypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
    { name: 'residual = x', call: (bn: BatchNorm) => bn.forward(x, shape, { residual: x }), type: BatchNormRangeError, code: 'ERR_BATCHNORM_OVERLAP' },
    {
      name: 'residual overlapping x only in a later ghost batch', type: BatchNormRangeError, code: 'ERR_BATCHNORM_OVERLAP',
      call: (bn: BatchNorm) => bn.forward(shared.subarray(0, n), shape, { residual: shared.subarray(40) }),
    },
    { name: 'opts not an object', call: (bn: BatchNorm) => bn.forward(x, shape, 5 as never), type: BatchNormTypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
  ])('forward: $name', ({ call, type, code }) => {
    const bn = reluLayer({ virtualBatchSize: 2 });
    const before = snapshot(bn);
    expect(() => call(bn)).toThrow(type);
    expect(() => call(bn)).toThrow(expect.objectContaining({ code }));
    expect(snapshot(bn)).toBe(before);
  });

  test.each([
    { name: 'dresidual after a forward without residual', residual: false, dresidual: () => new Float32Array(n), type: BatchNormRangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'dresidual of the wrong length', residual: true, dresidual: () => new Float32Array(n - 1), type: BatchNormRangeError, code: 'ERR_BATCHNORM_LENGTH_MISMATCH' },
    { name: 'dresidual = x', residual: true, dresidual: () => x, type: BatchNormRangeError, code: 'ERR_BATCHNORM_OVERLAP' },
    { name: 'dresidual true (a destination is needed)', residual: true, dresidual: () => true as never, type: BatchNormTypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
  ])('backward: $name', ({ residual, dresidual, type, code }) => {
    const bn = reluLayer({ virtualBatchSize: 2 });
    bn.forward(x, shape, residual ? { residual: z } : undefined);
    const before = snapshot(bn);
    const xBefore = x.slice();
    expect(() => bn.backward(dy, { dresidual: dresidual() })).toThrow(type);
    expect(() => bn.backward(dy, { dresidual: dresidual() })).toThrow(expect.objectContaining({ code }));
    expect(snapshot(bn)).toBe(before);
    expectSameBits(x, xBefore, 'x');
    bn.backward(dy); // the forward is still there to go backward from
  });
});
