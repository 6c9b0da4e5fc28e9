/**
 * Network slimming: the global channel mask by |gamma|, pruning a BatchNorm, and slicing its
 * neighbours so that the pruned network computes exactly what the full one computes with the
 * dropped channels' contributions removed.
 */
import { describe, expect, test } from 'vitest';

import { BatchNorm, BatchNormRangeError, BatchNormTypeError, channelMask, prune, pruneInputs, pruneOutputs, type MaskCriterion, type WeightedLayer } from '../lib/index';
import { conv2d, linear, relu } from './helpers/layers';
import { rng } from './helpers/random';
import { expectElementwise, expectSameBits } from './helpers/reference';

function withGamma(values: number[]) {
  const bn = new BatchNorm(values.length);
  bn.gamma!.set(values);
  return bn;
}

describe('channelMask', () => {
  const a = withGamma([0.9, -0.05, 0.4, 0.01]);
  const b = withGamma([-0.7, 0.02, 0.3]);

  test('keepRatio keeps the largest |gamma| across all layers', () => {
    expect(channelMask([a, b], { keepRatio: 3 / 7 })).toEqual([
      [true, false, true, false],
      [true, false, false],
    ]);
    expect(channelMask([a, b], { keepRatio: 0.5 })).toEqual([
      [true, false, true, false],
      [true, false, true],
    ]);
    expect(channelMask([a, b], { keepRatio: 1 }).flat().every(Boolean)).toBe(true);
  });

  test('threshold keeps |gamma| >= threshold, and each layer keeps at least minPerLayer', () => {
    expect(channelMask([a, b], { threshold: 0.5 })).toEqual([
      [true, false, false, false],
      [true, false, false],
    ]);
    const c = withGamma([0.001, 0.002]);
    expect(channelMask([a, c], { threshold: 0.5 })[1]).toEqual([false, true]);
    expect(channelMask([a, c], { threshold: 0.5, minPerLayer: 0 })[1]).toEqual([false, false]);
  });

  test('bad criteria are errors', () => {
    expect(() => channelMask([a], { keepRatio: 0 })).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_OPTION' }));
    expect(() => channelMask([a], {} as never)).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_TYPE' }));
    expect(() => channelMask([a], { keepRatio: 0.5, threshold: 1 } as never)).toThrow(TypeError);
    expect(() => channelMask([new BatchNorm(2, { affine: false })], { keepRatio: 0.5 })).toThrow(expect.objectContaining({ message: expect.stringContaining('with gamma') }));
  });

  test('an unknown key is refused, not ignored (a misspelt minPerLayer kept 1), and minPerLayer null is a TypeError as its type says', () => {
    expect(() => channelMask([a, b], { keepRatio: 0.25, minPerlayer: 2 } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_OPTION', message: expect.stringContaining("'minPerlayer'") }),
    );
    expect(() => channelMask([a, b], { keepRatio: 0.25, minPerLayer: null } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_TYPE', message: expect.stringContaining('criterion.minPerLayer') }),
    );
  });

  test.each([
    ['keepRatio', { keepRatio: '0.5' }],
    ['threshold', { threshold: '1' }],
    ['minPerLayer', { threshold: 1, minPerLayer: '1' }],
  ])('a non-number %s is a TypeError, and no gamma changes', (name, criterion) => {
    const before = [Array.from(a.gamma!), Array.from(b.gamma!)];
    const call = () => channelMask([a, b], criterion as unknown as MaskCriterion);
    expect(call).toThrow(BatchNormTypeError);
    expect(call).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_TYPE', message: expect.stringContaining(`for criterion.${name} `) }));
    expect([Array.from(a.gamma!), Array.from(b.gamma!)]).toEqual(before);
  });

  test('a NaN gamma ranks below every |gamma|: never >= a threshold, dropped first by keepRatio', () => {
    const n = withGamma([NaN, 0.2, 0.1, 3, 0.3, 0.4]);
    const largestThree = [[false, false, false, true, true, true]];
    expect(channelMask([n], { threshold: 0.25, minPerLayer: 0 })).toEqual(largestThree);
    expect(channelMask([n], { keepRatio: 0.5, minPerLayer: 0 })).toEqual(largestThree);
    expect(channelMask([n], { threshold: 0, minPerLayer: 0 })[0]).toEqual([false, true, true, true, true, true]);
    // minPerLayer still keeps a layer alive whose gammas are all NaN
    expect(channelMask([a, withGamma([NaN, NaN])], { threshold: 0.5 })[1]).toEqual([true, false]);
  });
});

describe('prune', () => {
  test('a smaller BatchNorm with the kept channels, same options and mode', () => {
    const r = rng(9);
    const bn = new BatchNorm(5, { momentum: 0.2, eps: 1e-3 });
    for (const t of [bn.gamma!, bn.beta!, bn.runningMean!, bn.runningVar!]) t.set(r.normals(5));
    bn.numBatchesTracked = 7;
    bn.eval();
    const { layer, kept } = prune(bn, [true, false, true, true, false]);
    expect(kept).toEqual([0, 2, 3]);
    expect([layer.numFeatures, layer.momentum, layer.eps, layer.training, layer.numBatchesTracked]).toEqual([3, 0.2, 1e-3, false, 7]);
    expectSameBits(layer.gamma!, Float32Array.from(kept, (c) => bn.gamma![c]), 'gamma');
    expectSameBits(layer.runningVar!, Float32Array.from(kept, (c) => bn.runningVar![c]), 'runningVar');
    expect(() => prune(bn, [false, false, false, false, false])).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_OPTION' }));
    expect(() => prune(bn, [true])).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_LENGTH_MISMATCH' }));
  });

  test('Linear -> BN -> ReLU -> Linear, pruned, equals the full network without the dropped channels', () => {
    const r = rng(10);
    const producer = { weight: r.normals(6 * 5), shape: [6, 5], bias: r.normals(6) };
    const consumer = { weight: r.normals(3 * 6), shape: [3, 6], bias: r.normals(3) };
    const bn = new BatchNorm(6);
    bn.gamma!.set(r.normals(6));
    bn.beta!.set(r.normals(6));
    bn.runningMean!.set(r.normals(6));
    bn.runningVar!.set(Float32Array.from(r.normals(6), (v) => 0.5 + v * v));
    bn.eval();
    const x = r.normals(8 * 5);
    const mask = channelMask([bn], { keepRatio: 0.5 })[0];
    const { layer, kept } = prune(bn, mask);
    const run = (p: WeightedLayer, b: BatchNorm, c: WeightedLayer) => {
      const h = b.forward(Float32Array.from(linear(x, 8, p.weight, p.shape, p.bias)), [8, p.shape[0]]);
      return linear(relu(h), 8, c.weight, c.shape, c.bias);
    };
    // The full network with the dropped channels' consumer columns zeroed.
    const zeroed = { ...consumer, weight: consumer.weight.map((w, k) => (mask[k % 6] ? w : 0)) };
    const want = run(producer, bn, zeroed);
    const got = run(pruneOutputs(producer, kept), layer, pruneInputs(consumer, kept));
    expectElementwise(Float32Array.from(got), want, 'y');
  });

  test('convolutions: pruneOutputs keeps filters, pruneInputs keeps input planes', () => {
    const r = rng(12);
    const conv = { weight: r.normals(4 * 3 * 2 * 2), shape: [4, 3, 2, 2], bias: r.normals(4) };
    const x = r.normals(1 * 3 * 4 * 4);
    const full = conv2d(x, [1, 3, 4, 4], conv.weight, conv.shape, conv.bias).y;
    const outs = pruneOutputs(conv, [1, 3]);
    expect(outs.shape).toEqual([2, 3, 2, 2]);
    const y = conv2d(x, [1, 3, 4, 4], outs.weight, outs.shape, outs.bias).y;
    expectElementwise(Float32Array.from(y), Float64Array.from([...full.subarray(9, 18), ...full.subarray(27, 36)]), 'kept filters');
    const ins = pruneInputs(conv, [0, 2]);
    expect(ins.shape).toEqual([4, 2, 2, 2]);
    const x2 = Float32Array.from([...x.subarray(0, 16), ...x.subarray(32, 48)]);
    const xZeroed = Float32Array.from(x, (v, k) => (k >= 16 && k < 32 ? 0 : v));
    expectElementwise(
      Float32Array.from(conv2d(x2, [1, 2, 4, 4], ins.weight, ins.shape, ins.bias).y),
      conv2d(xZeroed, [1, 3, 4, 4], conv.weight, conv.shape, conv.bias).y,
      'kept input planes',
    );
    expect(() => pruneInputs(conv, [3])).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_OPTION', message: expect.stringContaining('[0, 3)') }));
  });

  test('Float32Array subclasses as weights prune as plain ones, whatever their constructor or species', () => {
    // subarray() and slice() build through the subclass's Symbol.species.
    class Sized extends Float32Array {
      constructor(length: number) {
        super(length);
      }
    }
    class OtherSpecies extends Float32Array {
      static get [Symbol.species]() {
        return Float64Array;
      }
    }
    const r = rng(13);
    const conv = { weight: r.normals(4 * 3 * 2 * 2), shape: [4, 3, 2, 2], bias: r.normals(4) };
    for (const Subclass of [Sized, OtherSpecies]) {
      const of = (a: Float32Array) => {
        const s = new Subclass(a.length);
        s.set(a);
        return s;
      };
      const sub = { weight: of(conv.weight), shape: conv.shape, bias: of(conv.bias) };
      for (const [got, want] of [[pruneOutputs(sub, [1, 3]), pruneOutputs(conv, [1, 3])], [pruneInputs(sub, [0, 2]), pruneInputs(conv, [0, 2])]]) {
        expect(got.weight.constructor).toBe(Float32Array);
        expect(got.bias.constructor).toBe(Float32Array);
        expectSameBits(got.weight, want.weight, `${Subclass.name} weight`);
        expectSameBits(got.bias, want.bias, `${Subclass.name} bias`);
      }
    }
  });

  test('kept must be an array of numbers (a TypeError), of valid indices (a RangeError); the layer is not modified', () => {
    const layer = { weight: Float32Array.from({ length: 8 }, (_, k) => k), shape: [4, 2] };
    const errors: [unknown, typeof BatchNormTypeError | typeof BatchNormRangeError, string][] = [
      ['0,1', BatchNormTypeError, 'ERR_BATCHNORM_INVALID_TYPE'],
      [null, BatchNormTypeError, 'ERR_BATCHNORM_INVALID_TYPE'],
      [['1'], BatchNormTypeError, 'ERR_BATCHNORM_INVALID_TYPE'],
      [[1.5], BatchNormRangeError, 'ERR_BATCHNORM_INVALID_OPTION'],
      [[], BatchNormRangeError, 'ERR_BATCHNORM_INVALID_OPTION'],
    ];
    for (const prune of [pruneOutputs, pruneInputs]) {
      for (const [kept, type, code] of errors) {
        const call = () => prune(layer, kept as number[]);
        expect(call).toThrow(type);
        expect(call).toThrow(expect.objectContaining({ code, message: expect.stringContaining('for kept ') }));
      }
    }
    expect(Array.from(layer.weight)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});
