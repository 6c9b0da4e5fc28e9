/**
 * The BatchNorm layer: modes, running statistics (PyTorch, cumulative and Keras conventions),
 * backward with `.grad` accumulation, parameters, L1 and clipping, async calls, and errors
 * (the right class and code, nothing modified).
 */
import { describe, expect, test } from 'vitest';

import { BatchNorm, BatchNormRangeError, BatchNormStateError, BatchNormTypeError, backward, forwardTrain } from '../lib/index';
import { expectGradient, numericGradient, weightedSum } from './helpers/gradients';
import { snapshot } from './helpers/layer-state';
import { rng } from './helpers/random';
import { expectElementwise, expectRelative, expectSameBits, geometryOf, refInference } from './helpers/reference';

/** An error class, for the tables of expected errors. */
type ErrorClass = new (...args: never[]) => Error;

const shape = [6, 4, 3];
const r = rng(7);
const batches = [r.normals(72, 1, 2), r.normals(72, -0.5, 1.5), r.normals(72, 2, 0.5)];
const dy = r.normals(72);

/** A trained-looking layer: random gamma/beta, two training batches seen. */
function layerWithHistory(options = {}) {
  const bn = new BatchNorm(4, options);
  bn.gamma?.set(r.normals(4, 1, 0.3));
  bn.beta?.set(r.normals(4, 0, 0.3));
  bn.forward(batches[0], shape);
  bn.forward(batches[1], shape);
  return bn;
}

describe('training mode', () => {
  test('forward equals forwardTrain with the layer parameters, and updates the running statistics', () => {
    const bn = layerWithHistory();
    const runningMean = bn.runningMean!.slice();
    const runningVar = bn.runningVar!.slice();
    const y = bn.forward(batches[2], shape);
    const want = forwardTrain(batches[2], shape, { gamma: bn.gamma!, beta: bn.beta!, runningMean, runningVar });
    expectSameBits(y, want.y, 'y');
    expectSameBits(bn.runningMean!, runningMean, 'runningMean');
    expectSameBits(bn.runningVar!, runningVar, 'runningVar');
    expect(bn.numBatchesTracked).toBe(3);
  });

  test('backward returns dx and accumulates gradients like .grad', () => {
    const bn = layerWithHistory();
    const { saveMean, saveInvStd } = forwardTrain(batches[2], shape, { gamma: bn.gamma! });
    bn.forward(batches[2], shape);
    const dx = bn.backward(dy);
    const want = backward(dy, batches[2], shape, { gamma: bn.gamma!, saveMean, saveInvStd });
    expectSameBits(dx, want.dx, 'dx');
    expectSameBits(bn.gradGamma!, want.dgamma, 'gradGamma');
    expectSameBits(bn.gradBeta!, want.dbeta, 'gradBeta');
    bn.forward(batches[2], shape);
    bn.backward(dy);
    expectSameBits(bn.gradBeta!, want.dbeta.map((v) => 2 * v), 'gradBeta after two backwards');
    bn.zeroGrad();
    expect(Array.from(bn.gradGamma!)).toEqual([0, 0, 0, 0]);
    expect(Array.from(bn.gradBeta!)).toEqual([0, 0, 0, 0]);
  });

  test('parameters() exposes gamma and beta with their gradients for an optimizer', () => {
    const bn = new BatchNorm(4);
    const params = bn.parameters();
    expect(params.map((p) => p.name)).toEqual(['gamma', 'beta']);
    expect(params[0].value).toBe(bn.gamma);
    expect(params[0].grad).toBe(bn.gradGamma);
    expect(params[1].grad).toBe(bn.gradBeta);
    expect(new BatchNorm(4, { affine: false }).parameters()).toEqual([]);
    expect(new BatchNorm(4, { center: false }).parameters().map((p) => p.name)).toEqual(['gamma']);
  });

  test('momentum null is the cumulative average of the batch statistics', () => {
    const bn = new BatchNorm(4, { momentum: null });
    const means: Float32Array[] = [];
    const vars: Float64Array[] = [];
    for (const x of batches) {
      const { saveMean, saveInvStd } = forwardTrain(x, shape);
      means.push(saveMean);
      vars.push(Float64Array.from(saveInvStd, (s) => ((1 / (s * s) - 1e-5) * 18) / 17)); // unbiased, M = 18
      bn.forward(x, shape);
    }
    const average = (arrays: ArrayLike<number>[]) => Array.from({ length: 4 }, (_, c) => arrays.reduce((s, a) => s + a[c], 0) / arrays.length);
    expectRelative(bn.runningMean!, average(means), 'runningMean', [1, 1, 1, 1]);
    expectRelative(bn.runningVar!, average(vars), 'runningVar');
    expect(bn.numBatchesTracked).toBe(3);
  });

  test('without running statistics, eval mode also normalises with the batch statistics', () => {
    const bn = new BatchNorm(4, { trackRunningStats: false });
    expect(bn.runningMean).toBeNull();
    const y = bn.eval().forward(batches[0], shape);
    expectSameBits(y, forwardTrain(batches[0], shape, { gamma: bn.gamma!, beta: bn.beta! }).y, 'y');
    expect(bn.numBatchesTracked).toBe(0);
    expect(bn.stateDict()).toEqual({ weight: bn.gamma, bias: bn.beta });
  });
});

describe('eval mode', () => {
  test('forward uses the running statistics and changes nothing', () => {
    const bn = layerWithHistory().eval();
    expect(bn.training).toBe(false);
    const before = snapshot(bn);
    const y = bn.forward(batches[2], shape);
    const opts = { runningMean: bn.runningMean!, runningVar: bn.runningVar!, gamma: bn.gamma!, beta: bn.beta! };
    expectElementwise(y, refInference(batches[2], geometryOf(shape), opts), 'y');
    expect(snapshot(bn)).toBe(before);
    expect(bn.train().training).toBe(true);
  });

  test('backward treats the running statistics as constants (a frozen layer), checked by finite differences', () => {
    const bn = layerWithHistory().eval();
    const x = batches[2];
    const loss = (v: Float32Array) => weightedSum(bn.forward(v, shape), dy);
    bn.forward(x, shape);
    const dx = bn.backward(dy);
    expectGradient(dx, numericGradient(loss, x), 'dx');
    const gammaLoss = (g: Float32Array) => {
      const copy = new BatchNorm(4);
      copy.loadStateDict({ ...bn.stateDict(), weight: g });
      return weightedSum(copy.eval().forward(x, shape), dy);
    };
    expectGradient(bn.gradGamma!, numericGradient(gammaLoss, bn.gamma!), 'gradGamma');
  });
});

describe('Keras conventions', () => {
  // Channel 0 holds 1, 2, 3, 4 (mean 2.5, biased variance 1.25); channel 1 holds 0, 0, 4, 4
  // (mean 2, biased variance 4). Channels last, as Keras's axis -1.
  const x = new Float32Array([1, 0, 2, 0, 3, 4, 4, 4]);

  test('fromKeras: axis -1, epsilon 1e-3, moving = 0.99 moving + 0.01 batch with the biased variance', () => {
    const bn = BatchNorm.fromKeras(2);
    expect([bn.axis, bn.eps, bn.unbiased]).toEqual([-1, 1e-3, false]);
    const y = bn.forward(x, [4, 2]);
    expectRelative(bn.runningMean!, [0.01 * 2.5, 0.01 * 2], 'moving_mean');
    expectRelative(bn.runningVar!, [0.99 + 0.01 * 1.25, 0.99 + 0.01 * 4], 'moving_variance');
    expectElementwise(y, Float64Array.from(x, (v, k) => (k % 2 === 0 ? (v - 2.5) / Math.sqrt(1.25 + 1e-3) : (v - 2) / Math.sqrt(4 + 1e-3))), 'y');
    expect(bn.weightNames()).toEqual(['gamma', 'beta', 'moving_mean', 'moving_variance']);
  });

  test('fromKeras maps momentum, center, scale and gammaInitializer', () => {
    const bn = BatchNorm.fromKeras(2, { momentum: 0.9, center: false, gammaInitializer: 'zeros' });
    expect(bn.momentum).toBeCloseTo(0.1, 15);
    expect(bn.beta).toBeNull();
    expect(Array.from(bn.gamma!)).toEqual([0, 0]);
    expect(bn.weightNames()).toEqual(['gamma', 'moving_mean', 'moving_variance']);
    expect(BatchNorm.fromKeras(2, { scale: false }).weightNames()).toEqual(['beta', 'moving_mean', 'moving_variance']);
  });

  test('the PyTorch defaults take the unbiased variance instead', () => {
    const bn = new BatchNorm(2, { axis: -1 });
    bn.forward(x, [4, 2]);
    expectRelative(bn.runningVar!, [0.9 + 0.1 * (1.25 * 4) / 3, 0.9 + 0.1 * (4 * 4) / 3], 'running_var');
  });
});

describe('initialisation, L1 and clipping', () => {
  test("gammaInit 'ones', 'zeros', and 'normal' N(1, 0.02) reproducible from a seed", () => {
    expect(Array.from(new BatchNorm(3).gamma!)).toEqual([1, 1, 1]);
    expect(Array.from(new BatchNorm(3, { gammaInit: 'zeros' }).gamma!)).toEqual([0, 0, 0]);
    const a = new BatchNorm(4096, { gammaInit: 'normal', seed: 5 }).gamma!;
    expectSameBits(new BatchNorm(4096, { gammaInit: 'normal', seed: 5 }).gamma!, a, 'same seed');
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const std = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
    expect(mean).toBeCloseTo(1, 2);
    expect(std).toBeGreaterThan(0.018);
    expect(std).toBeLessThan(0.022);
  });

  test('l1 adds l1 * sign(gamma) to gradGamma on each backward', () => {
    const plain = layerWithHistory();
    const slim = new BatchNorm(4, { l1: 0.01 });
    slim.loadStateDict(plain.stateDict());
    slim.gamma![1] = -slim.gamma![1];
    slim.gamma![2] = 0;
    plain.gamma!.set(slim.gamma!);
    for (const bn of [plain, slim]) {
      bn.forward(batches[2], shape);
      bn.backward(dy);
    }
    const want = plain.gradGamma!.map((g, c) => g + 0.01 * Math.sign(slim.gamma![c]));
    expectSameBits(slim.gradGamma!, want, 'gradGamma');
    expectSameBits(slim.gradBeta!, plain.gradBeta!, 'gradBeta');
    slim.l1 = 0.5;
    expect(slim.l1).toBe(0.5);
  });

  test('backward differentiates the forward that ran: gamma changed in between (an optimizer, clipGamma, loadStateDict) does not change dx or the L1 term', () => {
    const untouched = layerWithHistory({ l1: 0.01 });
    const changed = new BatchNorm(4, untouched.options());
    changed.loadStateDict(untouched.stateDict());
    for (const bn of [untouched, changed]) bn.forward(batches[2], shape);
    changed.gamma!.set([-3, 0.5, 2, -0.25]); // as an optimizer step might, signs included
    changed.clipGamma(-1, 1);
    expectSameBits(changed.backward(dy), untouched.backward(dy), 'dx');
    expectSameBits(changed.gradGamma!, untouched.gradGamma!, 'gradGamma');
  });

  test('options() and the renorm getter give copies: changing them does not bypass the setter', () => {
    const bn = new BatchNorm(4, { renorm: { rmax: 2, dmax: 1 } });
    bn.options().renorm!.rmax = 0.1;
    bn.renorm!.dmax = -5;
    expect(bn.renorm).toEqual({ rmax: 2, dmax: 1 });
  });

  test('clipGamma clamps gamma in place', () => {
    const bn = new BatchNorm(4);
    bn.gamma!.set([-2, 0.5, 3, 0.01]);
    bn.clipGamma(0.1, 1);
    expect(Array.from(bn.gamma!)).toEqual([0.1, 0.5, 1, 0.1].map(Math.fround));
  });
});

describe('async', () => {
  test('forwardAsync and backwardAsync give the same bits as forward and backward', async () => {
    const a = layerWithHistory({ virtualBatchSize: 3, renorm: { rmax: 1.5, dmax: 0.5 } });
    const b = new BatchNorm(4, a.options());
    b.loadStateDict(a.stateDict());
    expectSameBits(await a.forwardAsync(batches[2], shape), b.forward(batches[2], shape), 'y');
    expectSameBits(await a.backwardAsync(dy), b.backward(dy), 'dx');
    expectSameBits(a.gradGamma!, b.gradGamma!, 'gradGamma');
    expectSameBits(a.runningVar!, b.runningVar!, 'runningVar');
  });

  test('forwardAsync uses gamma and beta as they were when it was called: an optimizer step may overlap it', async () => {
    // Large enough that the kernel is still reducing when the step below lands.
    const big = [32, 4, 1 << 14];
    const x = rng(8).normals(32 * 4 * (1 << 14), 1, 2);
    for (const mode of ['train', 'eval']) {
      const [a, b] = [layerWithHistory(), layerWithHistory()];
      b.loadStateDict(a.stateDict());
      if (mode === 'eval') [a, b].forEach((bn) => bn.eval());
      const want = b.forward(x, big);
      const pending = a.forwardAsync(x, big);
      for (const p of a.parameters()) p.value.fill(100);
      expectSameBits(await pending, want, `${mode} y`);
    }
  });

  test('a call while an async call runs is a BatchNormStateError', async () => {
    const bn = new BatchNorm(4);
    const pending = bn.forwardAsync(batches[0], shape);
    expect(() => bn.forward(batches[1], shape)).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_BUSY' }));
    await expect(bn.backwardAsync(dy)).rejects.toBeInstanceOf(BatchNormStateError);
    await pending;
    expect(bn.backward(dy)).toHaveLength(72);
  });

  test('so is anything that reads or changes the layer meanwhile (a half-done update, or one the call would pick up)', async () => {
    const bn = new BatchNorm(4, { virtualBatchSize: 3 });
    const pending = bn.forwardAsync(batches[0], shape);
    const during: Array<[string, () => unknown]> = [
      ['zeroGrad', () => bn.zeroGrad()],
      ['train', () => bn.train()],
      ['eval', () => bn.eval()],
      ['l1', () => (bn.l1 = 0.1)],
      ['renorm', () => (bn.renorm = { rmax: 2, dmax: 1 })],
      ['stateDict', () => bn.stateDict()],
      ['getWeights', () => bn.getWeights()],
    ];
    for (const [name, act] of during) expect(act, name).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_BUSY' }));
    await pending;
    expect(bn.training).toBe(true);
    expect(bn.renorm).toBeNull();
    expect(bn.stateDict().num_batches_tracked).toBe(2);
  });
});

describe('errors: the right class and code, and nothing modified', () => {
  const T = BatchNormTypeError;
  const R = BatchNormRangeError;
  const S = BatchNormStateError;
  const cases: [string, (bn: BatchNorm) => unknown, ErrorClass, string, string][] = [
    ['x a Float64Array', (bn) => bn.forward(new Float64Array(72) as never, shape), T, 'ERR_BATCHNORM_INVALID_TYPE', 'for x'],
    ['wrong channel count', (bn) => bn.forward(new Float32Array(90), [6, 5, 3]), R, 'ERR_BATCHNORM_SHAPE_MISMATCH', 'numFeatures = 4'],
    ['shape product', (bn) => bn.forward(batches[0], [6, 4, 4]), R, 'ERR_BATCHNORM_SHAPE_MISMATCH', 'product'],
    ['one value per channel', (bn) => bn.forward(new Float32Array(4), [1, 4]), R, 'ERR_BATCHNORM_TOO_FEW_VALUES', 'more than 1 value'],
    ['dy wrong length', (bn) => bn.backward(new Float32Array(5)), R, 'ERR_BATCHNORM_LENGTH_MISMATCH', 'for dy'],
    ['dy a plain array', (bn) => bn.backward([1, 2] as never), T, 'ERR_BATCHNORM_INVALID_TYPE', 'for dy'],
    ['clipGamma min > max', (bn) => bn.clipGamma(1, 0), R, 'ERR_BATCHNORM_INVALID_OPTION', 'for max'],
    ['l1 negative', (bn) => (bn.l1 = -1), R, 'ERR_BATCHNORM_INVALID_OPTION', 'for l1'],
    ['renorm rmax < 1', (bn) => (bn.renorm = { rmax: 0.5, dmax: 0 }), R, 'ERR_BATCHNORM_INVALID_OPTION', 'renorm.rmax'],
    ['renorm without dmax', (bn) => (bn.renorm = { rmax: 2 } as never), T, 'ERR_BATCHNORM_INVALID_TYPE', 'renorm.dmax'],
    ["train('false')", (bn) => bn.train('false' as never), T, 'ERR_BATCHNORM_INVALID_TYPE', 'for mode'],
  ];
  test.each(cases)('%s', (_, act, type, code, mentions) => {
    const bn = layerWithHistory();
    bn.forward(batches[2], shape);
    const before = snapshot(bn);
    let error: unknown;
    try {
      act(bn);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(type);
    expect(error).toMatchObject({ code, message: expect.stringContaining(mentions) });
    expect(snapshot(bn)).toBe(before);
  });

  test('backward with no forward before it, or a second time, is a BatchNormStateError', () => {
    const bn = new BatchNorm(4);
    expect(() => bn.backward(dy)).toThrow(S);
    bn.forward(batches[0], shape);
    bn.backward(dy);
    expect(() => bn.backward(dy)).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_NO_FORWARD' }));
  });

  const options: [string, () => unknown, ErrorClass, string, string][] = [
    ['numFeatures 0', () => new BatchNorm(0), R, 'ERR_BATCHNORM_INVALID_OPTION', 'numFeatures'],
    ['numFeatures a string', () => new BatchNorm('4' as never), T, 'ERR_BATCHNORM_INVALID_TYPE', 'numFeatures'],
    ['options an array', () => new BatchNorm(4, [] as never), T, 'ERR_BATCHNORM_INVALID_TYPE', 'opts'],
    ['eps 0', () => new BatchNorm(4, { eps: 0 }), R, 'ERR_BATCHNORM_INVALID_EPS', 'opts.eps'],
    ['momentum 2', () => new BatchNorm(4, { momentum: 2 }), R, 'ERR_BATCHNORM_INVALID_MOMENTUM', 'opts.momentum'],
    ['Keras momentum -1', () => BatchNorm.fromKeras(4, { momentum: -1 }), R, 'ERR_BATCHNORM_INVALID_MOMENTUM', 'opts.momentum'],
    ['Keras epsilon a string', () => BatchNorm.fromKeras(4, { epsilon: '1e-3' as never }), T, 'ERR_BATCHNORM_INVALID_TYPE', 'opts.epsilon'],
    ['axis 1.5', () => new BatchNorm(4, { axis: 1.5 }), R, 'ERR_BATCHNORM_INVALID_AXIS', 'opts.axis'],
    ['gammaInit unknown', () => new BatchNorm(4, { gammaInit: 'xavier' as never }), R, 'ERR_BATCHNORM_INVALID_OPTION', "'ones' or 'zeros' or 'normal'"],
    ['affine a number', () => new BatchNorm(4, { affine: 1 as never }), T, 'ERR_BATCHNORM_INVALID_TYPE', 'opts.affine'],
    ['virtualBatchSize 0', () => new BatchNorm(4, { virtualBatchSize: 0 }), R, 'ERR_BATCHNORM_INVALID_OPTION', 'opts.virtualBatchSize'],
    ['renorm without running stats', () => new BatchNorm(4, { trackRunningStats: false, renorm: { rmax: 2, dmax: 1 } }), R, 'ERR_BATCHNORM_INVALID_OPTION', 'opts.renorm'],
    ['l1 without gamma', () => new BatchNorm(4, { affine: false, l1: 1e-4 }), R, 'ERR_BATCHNORM_INVALID_OPTION', 'opts.l1'],
    // A misspelt option is refused, as PyTorch and Keras refuse unknown keyword arguments.
    ["Keras's epsilon given to the PyTorch constructor", () => new BatchNorm(4, { epsilon: 0.5 } as never), R, 'ERR_BATCHNORM_INVALID_OPTION', "unknown option 'epsilon'"],
    ["PyTorch's eps and trackRunningStats given to fromKeras", () => BatchNorm.fromKeras(4, { eps: 1e-5, trackRunningStats: false } as never), R, 'ERR_BATCHNORM_INVALID_OPTION', "unknown options 'eps', 'trackRunningStats'"],
    ['seed 1.5', () => new BatchNorm(4, { gammaInit: 'normal', seed: 1.5 }), R, 'ERR_BATCHNORM_INVALID_OPTION', 'opts.seed'],
    ['seed NaN', () => new BatchNorm(4, { gammaInit: 'normal', seed: NaN }), R, 'ERR_BATCHNORM_INVALID_OPTION', 'opts.seed'],
    ['seed 2^32', () => new BatchNorm(4, { gammaInit: 'normal', seed: 2 ** 32 }), R, 'ERR_BATCHNORM_INVALID_OPTION', 'an integer in [0, 2^32)'],
    ['seed a string', () => new BatchNorm(4, { seed: '7' as never }), T, 'ERR_BATCHNORM_INVALID_TYPE', 'opts.seed'],
    ["renorm's rMax for rmax", () => new BatchNorm(4, { renorm: { rmax: 3, dmax: 5, rMax: 2 } as never }), R, 'ERR_BATCHNORM_INVALID_OPTION', "unknown option 'rMax'"],
  ];
  test.each(options)('constructor: %s', (_, act, type, code, mentions) => {
    expect(act).toThrow(type);
    expect(act).toThrow(expect.objectContaining({ code, message: expect.stringContaining(mentions) }));
  });

  test("forward's and backward's unknown options are refused, and the layer is left as it was", () => {
    const bn = new BatchNorm(4);
    const state = JSON.stringify(bn.stateDict(), (_, v) => (v instanceof Float32Array ? Array.from(v) : v));
    const unknown = (act: () => unknown, key: string) => expect(act).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_OPTION', message: expect.stringContaining(`unknown option '${key}'`) }));
    unknown(() => bn.forward(batches[0], shape, { outputs: new Float32Array(batches[0].length) } as never), 'outputs');
    expect(JSON.stringify(bn.stateDict(), (_, v) => (v instanceof Float32Array ? Array.from(v) : v))).toBe(state);
    expect(() => bn.backward(dy)).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_NO_FORWARD' }));
    bn.forward(batches[0], shape);
    unknown(() => bn.backward(dy, { dresidualOut: new Float32Array(dy.length) } as never), 'dresidualOut');
    expect(bn.backward(dy)).toHaveLength(dy.length); // the refused backward did not use up the forward
  });
});
