/**
 * Folding an eval-mode BatchNorm into a neighbouring layer: the folded layer must equal
 * layer -> BN (or BN -> Linear) within SPEC section 5's tolerance for y, against a float64
 * computation of the unfolded pair on the same float32 parameters.
 */
import { describe, expect, test } from 'vitest';

import { BatchNorm, BatchNormRangeError, BatchNormTypeError, foldIntoFollowing, foldIntoPreceding } from '../lib/index';
import { conv2d, linear } from './helpers/layers';
import { rng } from './helpers/random';
import { expectElementwise, geometryOf, refInference } from './helpers/reference';

/** An eval-mode BN with random parameters and running statistics (some far from 0 and 1). */
function trainedBn(C: number, seed: number) {
  const r = rng(seed);
  const bn = new BatchNorm(C);
  bn.gamma!.set(r.normals(C, 1, 0.5));
  bn.beta!.set(r.normals(C, 0, 0.5));
  bn.runningMean!.set(r.normals(C, 0, 3));
  bn.runningVar!.set(Float32Array.from(r.normals(C), (v) => 0.01 + v * v * 4));
  return bn.eval();
}

const bnRef = (bn: BatchNorm) => ({ runningMean: bn.runningMean!, runningVar: bn.runningVar!, gamma: bn.gamma!, beta: bn.beta!, eps: bn.eps });

/** Calling `fold` with a non-BatchNorm `bn` is a coded TypeError naming bn, and leaves the layer alone. */
function expectBatchNormTypeError(fold: (bn: BatchNorm, layer: { weight: Float32Array; shape: number[] }) => unknown) {
  const layer = { weight: Float32Array.of(1, 2, 3, 4, 5, 6), shape: [2, 3] };
  for (const bn of [null, undefined, {}, { numFeatures: 2 }]) {
    const call = () => fold(bn as unknown as BatchNorm, layer);
    expect(call).toThrow(BatchNormTypeError);
    expect(call).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_TYPE', message: expect.stringContaining('Expected a BatchNorm for bn ') }));
  }
  expect(Array.from(layer.weight)).toEqual([1, 2, 3, 4, 5, 6]);
}

describe('foldIntoPreceding', () => {
  test('Linear [out, in] then BN equals the folded Linear', () => {
    const r = rng(1);
    const layer = { weight: r.normals(6 * 10), shape: [6, 10], bias: r.normals(6) };
    const bn = trainedBn(6, 2);
    const x = r.normals(32 * 10);
    const z = Float32Array.from(linear(x, 32, layer.weight, layer.shape, layer.bias));
    const want = refInference(z, geometryOf([32, 6]), bnRef(bn));
    const folded = foldIntoPreceding(layer, bn);
    expect(folded.shape).toEqual([6, 10]);
    expectElementwise(Float32Array.from(linear(x, 32, folded.weight, folded.shape, folded.bias)), want, 'y');
    // and the same through the BN layer itself on the float32 Linear output
    expectElementwise(bn.forward(z, [32, 6]), want, 'bn.forward');
  });

  test('Conv [out, in, kh, kw] without bias then BN (NCHW) equals the folded convolution', () => {
    const r = rng(3);
    const layer = { weight: r.normals(4 * 3 * 3 * 3, 0, 0.3), shape: [4, 3, 3, 3] };
    const bn = trainedBn(4, 4);
    const x = r.normals(2 * 3 * 6 * 5);
    const conv = conv2d(x, [2, 3, 6, 5], layer.weight, layer.shape);
    const want = refInference(Float32Array.from(conv.y), geometryOf(conv.shape), bnRef(bn));
    const folded = foldIntoPreceding(layer, bn);
    expectElementwise(Float32Array.from(conv2d(x, [2, 3, 6, 5], folded.weight, folded.shape, folded.bias).y), want, 'y');
  });

  test('the arguments are not modified; the channel counts must agree', () => {
    const layer = { weight: new Float32Array(12).fill(1), shape: [3, 4] };
    const bn = trainedBn(3, 5);
    foldIntoPreceding(layer, bn);
    expect(Array.from(layer.weight)).toEqual(new Array(12).fill(1));
    expect(() => foldIntoPreceding({ weight: new Float32Array(12), shape: [4, 3] }, bn)).toThrow(
      expect.objectContaining({ code: 'ERR_BATCHNORM_SHAPE_MISMATCH', message: expect.stringContaining('layer.shape[0]') }),
    );
    expect(() => foldIntoPreceding({ weight: new Float32Array(12), shape: [3, 5] }, bn)).toThrow(BatchNormRangeError);
    expect(() => foldIntoPreceding({ weight: new Float32Array(12), shape: [3, 4], bias: new Float32Array(4) }, bn)).toThrow(
      expect.objectContaining({ code: 'ERR_BATCHNORM_LENGTH_MISMATCH', message: expect.stringContaining('layer.bias') }),
    );
    expect(() => foldIntoPreceding(layer, new BatchNorm(3, { trackRunningStats: false }))).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_OPTION' }));
  });

  test('a bn that is not a BatchNorm is a coded TypeError', () => {
    expectBatchNormTypeError((bn, layer) => foldIntoPreceding(layer, bn));
  });
});

describe('foldIntoFollowing', () => {
  test('BN then Linear [out, in] equals the folded Linear', () => {
    const r = rng(6);
    const bn = trainedBn(8, 7);
    const layer = { weight: r.normals(5 * 8), shape: [5, 8], bias: r.normals(5) };
    const x = Float32Array.from(r.normals(16 * 8), (v, k) => v * 2 + bn.runningMean![k % 8]);
    const want = linear(refInference(x, geometryOf([16, 8]), bnRef(bn)), 16, layer.weight, layer.shape, layer.bias);
    const folded = foldIntoFollowing(bn, layer);
    expectElementwise(Float32Array.from(linear(x, 16, folded.weight, folded.shape, folded.bias)), want, 'y');
  });

  test('only a Linear follows; its inputs must be the channels', () => {
    const bn = trainedBn(4, 8);
    expect(() => foldIntoFollowing(bn, { weight: new Float32Array(4 * 4 * 9), shape: [4, 4, 3, 3] })).toThrow(
      expect.objectContaining({ code: 'ERR_BATCHNORM_SHAPE_MISMATCH', message: expect.stringContaining('[out, in]') }),
    );
    expect(() => foldIntoFollowing(bn, { weight: new Float32Array(10), shape: [2, 5] })).toThrow(
      expect.objectContaining({ code: 'ERR_BATCHNORM_SHAPE_MISMATCH', message: expect.stringContaining('layer.shape[1]') }),
    );
  });

  test('a bn that is not a BatchNorm is a coded TypeError', () => {
    expectBatchNormTypeError((bn, layer) => foldIntoFollowing(bn, layer));
  });
});
