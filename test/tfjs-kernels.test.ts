/**
 * batchnorm/tfjs at the kernel level, on the cpu and wasm backends of TensorFlow.js:
 * tf.batchNorm (FusedBatchNorm) and a BatchNormalization layer's training forward, backward and
 * moving averages against the float64 reference with SPEC section 5's tolerances, in every
 * layout, including those where stock tfjs is wrong or throws; which calls stay on the original
 * kernel; install options; that uninstall() restores tfjs exactly; and the entry point.
 *
 * lib/api is spied on (its real functions run), to see which calls reach our kernels.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest';

import * as api from '../lib/api';
import { install, uninstall } from '../lib/tfjs';
import { BACKWARD_KERNEL, TRAIN_KERNEL } from '../lib/tfjs/training-kernels';
import { cleanExit, runChild } from './helpers/child';
import { rng } from './helpers/random';
import { expectElementwise, expectRelative, expectSum, geometryOf, refBackward, refForwardTrain, refInference } from './helpers/reference';
import { BACKENDS, expectCloseTensors, maxAbsDifference, tf, useBackend, values } from './helpers/tfjs';

vi.mock('../lib/api', { spy: true });

const r = rng(15);
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const positives = (n: number) => Float32Array.from({ length: n }, () => 0.25 + 2 * r.uniform());

/** Per-channel inference parameters, random. */
function inferenceParameters(C: number) {
  return { runningMean: r.normals(C, 2, 1), runningVar: positives(C), gamma: r.normals(C, 1, 0.5), beta: r.normals(C, 0, 1) };
}

/** Runs `f` with stock tfjs (batchnorm/tfjs uninstalled), then installs it again. */
function stock<T>(f: () => T): T {
  uninstall();
  try {
    return f();
  } finally {
    install();
  }
}

/** tfjs-layers' BatchNormalization class (the one install() patches). */
const BatchNormalization = () => (tf.serialization.SerializationMap.getMap().classNameMap.BatchNormalization as unknown as [{ prototype: { call: unknown } }])[0];

describe.each(BACKENDS)('%s backend', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
    install();
  });
  afterAll(() => uninstall());
  beforeEach(() => vi.clearAllMocks());

  describe('tf.batchNorm', () => {
    const cases = [
      { name: '[N, C]', shape: [9, 5], paramShape: [5], axis: 1 },
      { name: '[N, L, C]', shape: [3, 4, 6], paramShape: [6], axis: 2 },
      { name: 'NHWC', shape: [2, 5, 3, 7], paramShape: [7], axis: 3 },
      { name: 'NCHW with parameters [1, C, 1, 1]', shape: [2, 7, 3, 5], paramShape: [1, 7, 1, 1], axis: 1 },
      { name: '[N, C, L] with parameters [C, 1]', shape: [3, 6, 5], paramShape: [6, 1], axis: 1 },
      { name: 'NCDHW with parameters [1, C, 1, 1, 1]', shape: [2, 3, 2, 3, 4], paramShape: [1, 3, 1, 1, 1], axis: 1 },
    ];

    test.each(cases)('$name runs on our kernel and matches the float64 reference', ({ shape, paramShape, axis }) => {
      const x = r.normals(size(shape), 3, 2);
      const p = inferenceParameters(shape[axis]);
      const param = (v: Float32Array) => tf.tensor(v, paramShape);
      const y = tf.batchNorm(tf.tensor(x, shape), param(p.runningMean), param(p.runningVar), param(p.beta), param(p.gamma), 1e-3);
      expect(api.forwardInference).toHaveBeenCalledTimes(1);
      expect(y.shape).toEqual(shape);
      expectElementwise(values(y), refInference(x, geometryOf(shape, axis), { ...p, eps: 1e-3 }), 'y');
    });

    test('without scale and offset', () => {
      const shape = [4, 3, 5];
      const x = r.normals(size(shape), -1, 3);
      const p = inferenceParameters(5);
      const y = tf.batchNorm(tf.tensor(x, shape), tf.tensor(p.runningMean), tf.tensor(p.runningVar));
      expect(api.forwardInference).toHaveBeenCalledTimes(1);
      expectElementwise(values(y), refInference(x, geometryOf(shape, -1), { runningMean: p.runningMean, runningVar: p.runningVar, eps: 1e-3 }), 'y');
    });

    test('stock tfjs normalises channels-first parameters along the wrong axis; ours does not', () => {
      const shape = [2, 4, 3, 3];
      const x = r.normals(size(shape), 0, 1);
      const p = inferenceParameters(4);
      const run = () => {
        const param = (v: Float32Array) => tf.tensor(v, [1, 4, 1, 1]);
        return tf.batchNorm(tf.tensor(x, shape), param(p.runningMean), param(p.runningVar), param(p.beta), param(p.gamma));
      };
      const want = tf.tensor(Float32Array.from(refInference(x, geometryOf(shape, 1), { ...p, eps: 1e-3 })), shape);
      expect(maxAbsDifference(stock(run), want)).toBeGreaterThan(0.1);
      expect(maxAbsDifference(run(), want)).toBeLessThan(1e-4);
    });

    const fallbacks = [
      { name: 'full-size parameters', x: () => tf.tensor(r.normals(24), [2, 3, 4]), param: () => tf.tensor(positives(24), [2, 3, 4]), eps: 1e-3 },
      { name: 'parameters along no single axis', x: () => tf.tensor(r.normals(24), [2, 3, 4]), param: () => tf.tensor(positives(3)), eps: 1e-3 },
      { name: 'scalar parameters', x: () => tf.tensor(r.normals(24), [2, 3, 4]), param: () => tf.scalar(0.5 + r.uniform()), eps: 1e-3 },
      { name: 'parameters of shape [1]', x: () => tf.tensor(r.normals(24), [2, 3, 4]), param: () => tf.tensor(positives(1)), eps: 1e-3 },
      { name: 'an int32 input', x: () => tf.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'int32'), param: () => tf.tensor(positives(3)), eps: 1e-3 },
      { name: 'an epsilon of 0', x: () => tf.tensor(r.normals(12), [4, 3]), param: () => tf.tensor(positives(3)), eps: 0 },
      { name: 'an empty tensor', x: () => tf.zeros([0, 3]), param: () => tf.tensor(positives(3)), eps: 1e-3 },
    ];

    test.each(fallbacks)('$name: the original kernel, with the same result', ({ x, param, eps }) => {
      const inputs = [x(), param(), param(), param(), param()] as const;
      const run = () => tf.batchNorm(...inputs, eps);
      const want = stock(run);
      vi.clearAllMocks();
      const got = run();
      expect(api.forwardInference).not.toHaveBeenCalled();
      expect(got.dtype).toBe(want.dtype);
      expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
    });
  });

  describe('BatchNormalization layer, training mode', () => {
    const cases = [
      { name: 'Dense output [N, C]', shape: [16, 6], axis: -1, momentum: 0.99 },
      { name: 'NHWC', shape: [4, 3, 5, 6], axis: -1, momentum: 0.6 },
      { name: 'NCHW (axis 1)', shape: [4, 6, 3, 5], axis: 1, momentum: 0.6, stockThrows: true },
      { name: '[N, C, L] (axis 1)', shape: [5, 4, 7], axis: 1, momentum: 0.99, stockThrows: true },
      { name: 'NCDHW (axis 1, rank 5)', shape: [2, 3, 2, 3, 4], axis: 1, momentum: 0.6, stockThrows: true },
      { name: 'scale: false', shape: [16, 6], axis: -1, momentum: 0.6, scale: false, stockThrows: true },
      { name: 'center: false, NHWC', shape: [4, 3, 5, 6], axis: -1, momentum: 0.6, center: false, stockThrows: true },
    ];

    /** A built layer with random parameters and moving statistics. */
    function layerFor(c: (typeof cases)[number]) {
      const layer = tf.layers.batchNormalization({ axis: c.axis, momentum: c.momentum, scale: c.scale, center: c.center });
      layer.build(c.shape);
      const C = c.shape[c.axis < 0 ? c.axis + c.shape.length : c.axis];
      const p = inferenceParameters(C);
      const weights = [c.scale !== false && p.gamma, c.center !== false && p.beta, p.runningMean, p.runningVar].filter((w) => w !== false);
      layer.setWeights(weights.map((w) => tf.tensor(w)));
      return { layer, p: { ...p, gamma: c.scale === false ? undefined : p.gamma, beta: c.center === false ? undefined : p.beta } };
    }

    /** y and the gradients of sum(y * dy) for x and the layer's trainable weights. */
    function trainingStep(layer: tf.layers.Layer, x: tf.Tensor, dy: tf.Tensor) {
      const xs = [x, ...layer.trainableWeights.map((w) => w.read())];
      return tf.engine().gradients(() => layer.apply(x, { training: true }) as tf.Tensor, xs, dy);
    }

    test.each(cases)('$name: y, gradients and moving averages match the float64 reference', (c) => {
      const { layer, p } = layerFor(c);
      const x = r.normals(size(c.shape), 2, 3);
      const dy = r.normals(size(c.shape));
      const { value: y, grads } = trainingStep(layer, tf.tensor(x, c.shape), tf.tensor(dy, c.shape));
      expect(api.forwardTrain).toHaveBeenCalledTimes(1);
      expect(api.backward).toHaveBeenCalledTimes(1);

      const g = geometryOf(c.shape, c.axis);
      const ref = refForwardTrain(x, g, { gamma: p.gamma, beta: p.beta, eps: 1e-3 });
      expectElementwise(values(y), ref.y, 'y');
      const moving = (old: Float32Array, batch: Float64Array) => batch.map((v, k) => c.momentum * old[k] + (1 - c.momentum) * v);
      const spread = ref.variance.map(Math.sqrt);
      const [movingMean, movingVariance] = layer.getWeights().slice(-2).map(values);
      expectRelative(movingMean, moving(p.runningMean, ref.mean), 'moving mean', spread);
      expectRelative(movingVariance, moving(p.runningVar, ref.variance), 'moving variance (biased batch variance)');

      const rb = refBackward(dy, x, g, { gamma: p.gamma, saveMean: Float32Array.from(ref.mean), saveInvStd: Float32Array.from(ref.invStd) });
      const [dx, ...dparams] = grads.map(values);
      expectElementwise(dx, rb.dx, 'dx');
      const wanted = [p.gamma && { grad: rb.dgamma, scale: rb.dgammaScale, name: 'dgamma' }, p.beta && { grad: rb.dbeta, scale: rb.dbetaScale, name: 'dbeta' }].filter((w) => !!w);
      expect(dparams.length).toBe(wanted.length);
      wanted.forEach((w, k) => expectSum(dparams[k], w.grad, w.scale, w.name));
    });

    test.each(cases.filter((c) => c.stockThrows))('$name: stock tfjs throws', (c) => {
      const { layer } = layerFor(c);
      const x = tf.tensor(r.normals(size(c.shape)), c.shape);
      expect(() => stock(() => trainingStep(layer, x, tf.onesLike(x)))).toThrow();
    });

    describe('a gradient of the gradient (a gradient penalty)', () => {
      /** The gradients, for x and gamma, of |d sum(y * w) / dx|^2, y the layer's training output (beta drops out). */
      function penaltyGradients(layer: tf.layers.Layer, x: tf.Tensor, w: tf.Tensor) {
        const weights = layer.trainableWeights.filter((v) => /gamma/.test(v.name)).map((v) => v.read());
        const penalty = () => tf.square(tf.grad((x: tf.Tensor) => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, w)))(x)).sum();
        return tf.engine().gradients(penalty, [x, ...weights]).grads;
      }

      /** A built channels-last-or-first layer with the given gamma, beta and moving statistics. */
      function builtLayer(axis: number, shape: number[], weights: tf.Tensor[]) {
        const layer = tf.layers.batchNormalization({ axis });
        layer.build(shape);
        layer.setWeights(weights);
        return layer;
      }

      // Channels-first is compared with its channels-last twin (x transposed), which stock tfjs differentiates.
      test.each([
        { name: 'Dense output [N, C]', shape: [8, 5], axis: -1, toLast: [0, 1] },
        { name: 'NHWC', shape: [3, 4, 3, 5], axis: -1, toLast: [0, 1, 2, 3] },
        { name: 'NCHW (axis 1)', shape: [3, 5, 4, 3], axis: 1, toLast: [0, 2, 3, 1] },
      ])('$name: the same gradients as stock tfjs', ({ shape, axis, toLast }) => {
        const C = shape[axis < 0 ? axis + shape.length : axis];
        const p = inferenceParameters(C);
        const weights = [p.gamma, p.beta, p.runningMean, p.runningVar].map((v) => tf.tensor(v));
        const x = tf.tensor(r.normals(size(shape), 1, 2), shape);
        const w = tf.tensor(r.normals(size(shape)), shape);
        const back = toLast.map((_, k) => toLast.indexOf(k));
        const want = stock(() => {
          const twin = builtLayer(-1, toLast.map((k) => shape[k]), weights);
          const [dx, dgamma] = penaltyGradients(twin, x.transpose(toLast), w.transpose(toLast));
          return [dx.transpose(back), dgamma];
        });
        const got = penaltyGradients(builtLayer(axis, shape, weights), x, w);
        expect(api.forwardTrain).toHaveBeenCalledTimes(1);
        ['dx', 'dgamma'].forEach((name, k) => expectCloseTensors(got[k], want[k], name));
      });
    });

    test('inference mode, axis 1: our FusedBatchNorm with the moving statistics (stock tfjs is wrong)', () => {
      const c = cases[2];
      const { layer, p } = layerFor(c);
      const x = r.normals(size(c.shape), 2, 3);
      const want = refInference(x, geometryOf(c.shape, 1), { ...p, eps: 1e-3 });
      const run = () => layer.apply(tf.tensor(x, c.shape)) as tf.Tensor;
      expect(maxAbsDifference(stock(run), tf.tensor(Float32Array.from(want), c.shape))).toBeGreaterThan(0.1);
      vi.clearAllMocks();
      expectElementwise(values(run()), want, 'y');
      expect(api.forwardInference).toHaveBeenCalledTimes(1);
      expect(api.forwardTrain).not.toHaveBeenCalled();
    });

    test.each([
      { name: 'NHWC', shape: [3, 4, 2, 5], axis: 3 },
      { name: 'NCHW', shape: [3, 5, 2, 4], axis: 1 },
    ])("$name: a Keras 2 config's axis list ([axis], as Keras saves it) trains as the number", async ({ shape, axis }) => {
      // tfjs-layers keeps the list and coerces it to a number where it uses it, so stock tfjs trains these.
      const listed = (await tf.models.modelFromJSON({ class_name: 'BatchNormalization', config: { axis: [axis], momentum: 0.6 } })) as unknown as tf.layers.Layer;
      const plain = tf.layers.batchNormalization({ axis, momentum: 0.6 });
      const x = tf.tensor(r.normals(size(shape), 1, 2), shape);
      const dy = tf.tensor(r.normals(size(shape)), shape);
      const [got, want] = [listed, plain].map((layer) => {
        const { value, grads } = tf.engine().gradients(() => layer.apply(x, { training: true }) as tf.Tensor, [x], dy);
        return [value, grads[0], ...layer.getWeights()].map((t) => Array.from(values(t)));
      });
      expect(api.forwardTrain).toHaveBeenCalledTimes(2);
      expect(got).toEqual(want);
    });

    test('one value per channel (M = 1): the original layer code', () => {
      const layer = tf.layers.batchNormalization({});
      const x = tf.tensor(r.normals(4), [1, 4]);
      const y = layer.apply(x, { training: true }) as tf.Tensor;
      expect(api.forwardTrain).not.toHaveBeenCalled();
      expect(Array.from(values(y))).toEqual([0, 0, 0, 0]); // tfjs: zero variance, so y = beta
    });
  });

  test('the overriding kernel keeps the original setup and dispose functions', () => {
    const original = stock(() => tf.getKernel(tf.FusedBatchNorm, backend)!);
    const ours = tf.getKernel(tf.FusedBatchNorm, backend)!;
    expect(ours).not.toBe(original);
    expect(ours.kernelFunc).not.toBe(original.kernelFunc);
    expect(ours.setupFunc).toBe(original.setupFunc);
    expect(ours.disposeFunc).toBe(original.disposeFunc);
    if (backend === 'wasm') expect(original.setupFunc).toBeTypeOf('function');
  });
});

test('the entry point: batchnorm/tfjs by name, and a package root that does not load tfjs', () => {
  expect(cleanExit(runChild('tfjs-entry.js'))).toEqual({
    rootExportsForwardTrain: 'function',
    rootLoadsTfjs: false,
    entry: 'dist/tfjs/index.js',
    entryExports: ['install', 'uninstall'],
    entryLoadsTfjs: true,
  });
});

describe('install and uninstall', () => {
  beforeAll(() => useBackend('cpu'));
  afterAll(() => uninstall());

  const fusedBatchNorms = () => BACKENDS.map((b) => tf.getKernel(tf.FusedBatchNorm, b));

  test('uninstall() restores the original kernels and layer, and removes ours', () => {
    const originals = fusedBatchNorms();
    const originalCall = BatchNormalization().prototype.call;
    install();
    expect(fusedBatchNorms().every((k, i) => k !== originals[i])).toBe(true);
    expect(BatchNormalization().prototype.call).not.toBe(originalCall);
    expect(tf.getGradient(TRAIN_KERNEL)).toBeDefined();
    uninstall();
    expect(fusedBatchNorms()).toEqual(originals);
    fusedBatchNorms().forEach((k, i) => expect(k).toBe(originals[i]));
    expect(BatchNormalization().prototype.call).toBe(originalCall);
    for (const b of BACKENDS) for (const name of [TRAIN_KERNEL, BACKWARD_KERNEL]) expect(tf.getKernel(name, b)).toBeUndefined();
    expect(tf.getGradient(TRAIN_KERNEL)).toBeUndefined();
    uninstall(); // a second uninstall() does nothing
    expect(BatchNormalization().prototype.call).toBe(originalCall);
  });

  test('install() again replaces the installation; options choose backends and layers', () => {
    const originals = fusedBatchNorms();
    const originalCall = BatchNormalization().prototype.call;
    expect(install()).toEqual({ backends: ['cpu', 'wasm'], layers: true });
    expect(install({ backends: ['wasm'], layers: false })).toEqual({ backends: ['wasm'], layers: false });
    expect(tf.getKernel(tf.FusedBatchNorm, 'cpu')).toBe(originals[0]);
    expect(tf.getKernel(tf.FusedBatchNorm, 'wasm')).not.toBe(originals[1]);
    expect(BatchNormalization().prototype.call).toBe(originalCall);
    uninstall();
    expect(fusedBatchNorms()).toEqual(originals);
  });

  test('invalid options throw before anything changes', () => {
    install({ backends: ['cpu'] });
    const installed = fusedBatchNorms();
    const bad: [unknown, ErrorConstructor, string][] = [
      [{ backends: 'cpu' }, TypeError, 'ERR_BATCHNORM_INVALID_TYPE'],
      [{ backends: ['webgl'] }, RangeError, 'ERR_BATCHNORM_INVALID_OPTION'],
      [{ layers: 1 }, TypeError, 'ERR_BATCHNORM_INVALID_TYPE'],
      [{ layer: false }, RangeError, 'ERR_BATCHNORM_INVALID_OPTION'], // a misspelt option, refused rather than ignored
      [7, TypeError, 'ERR_BATCHNORM_INVALID_TYPE'],
    ];
    for (const [options, type, code] of bad) {
      let error: unknown;
      try {
        install(options as never);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(options)).toBeInstanceOf(type);
      expect((error as { code: string }).code).toBe(code);
      expect(fusedBatchNorms()).toEqual(installed);
    }
  });
});
