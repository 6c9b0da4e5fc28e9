/**
 * batchnorm/tfjs on whole TensorFlow.js models (Dense and Conv2D with BatchNormalization), on the
 * cpu and wasm backends: the same predictions, losses, gradients and moving averages with and
 * without install(), within SPEC section 5's elementwise bound; model.fit the same; no tensor
 * leaks; uninstall() restores stock tfjs.
 *
 * Channels-first models cannot be trained by stock tfjs (it throws), so they are compared with
 * their channels-last twin on stock tfjs: the same weights (a Conv2D kernel has the same shape in
 * both formats) and the input transposed compute the same function.
 *
 * tfjs-backend-wasm cannot train Conv2D layers by itself (it lacks a kernel of their backward);
 * examples/wasm-conv2d-filter-gradient.ts supplies it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { registerWasmConv2DFilterGradient } from '../examples/wasm-conv2d-filter-gradient';
import { install, uninstall } from '../lib/tfjs';
import { rng, type Rng } from './helpers/random';
import { BACKENDS, expectCloseTensors, normalTensor, tf, useBackend, values } from './helpers/tfjs';

type Format = 'channelsLast' | 'channelsFirst' | 'dense';

const N = 8;
const CLASSES = 3;

/** A small model of each kind, two BatchNormalization layers in the convolutional ones. */
function model(format: Format): tf.LayersModel {
  if (format === 'dense') {
    return tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [12], units: 10 }),
        tf.layers.batchNormalization({}),
        tf.layers.activation({ activation: 'relu' }),
        tf.layers.dense({ units: CLASSES, activation: 'softmax' }),
      ],
    });
  }
  const dataFormat = format;
  const axis = format === 'channelsFirst' ? 1 : -1;
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: format === 'channelsFirst' ? [3, 6, 6] : [6, 6, 3], filters: 5, kernelSize: 3, dataFormat }),
      tf.layers.batchNormalization({ axis }),
      tf.layers.activation({ activation: 'relu' }),
      tf.layers.conv2d({ filters: 4, kernelSize: 3, dataFormat, padding: 'same' }),
      tf.layers.batchNormalization({ axis, momentum: 0.8 }),
      tf.layers.activation({ activation: 'relu' }),
      tf.layers.globalAveragePooling2d({ dataFormat }),
      tf.layers.dense({ units: CLASSES, activation: 'softmax' }),
    ],
  });
}

/** Random weights: positive moving variances, gammas near 1. */
function randomWeights(m: tf.LayersModel, r: Rng): tf.Tensor[] {
  return m.weights.map((w) => {
    const n = w.shape.reduce((a, b) => a! * b!, 1)!;
    const v = /moving_variance/.test(w.name) ? r.normals(n, 1, 0.2).map(Math.abs) : /gamma/.test(w.name) ? r.normals(n, 1, 0.3) : r.normals(n, 0, 0.5);
    return tf.tensor(v, w.shape as number[]);
  });
}

/** Inputs of the model (channels-last for convolutions), one-hot labels. */
function batch(format: Format, r: Rng, n = N) {
  const x = normalTensor(r, format === 'dense' ? [n, 12] : [n, 6, 6, 3], 0.5, 1.5);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, k) => k % CLASSES), 'int32'), CLASSES).toFloat();
  return { x: format === 'channelsFirst' ? x.transpose([0, 3, 1, 2]) : x, labels };
}

/** One training step's loss and gradients (in the order of trainableWeights), without updating weights. */
function lossAndGradients(m: tf.LayersModel, x: tf.Tensor, labels: tf.Tensor) {
  const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
  return { loss: value, grads: vars.map((v) => grads[v.name]) };
}

const movingStatistics = (m: tf.LayersModel) => m.weights.filter((w) => /moving_/.test(w.name)).map((w) => w.read());

/** What a comparison looks at: predictions, one step's loss and gradients, then moving statistics. */
function observe(m: tf.LayersModel, x: tf.Tensor, labels: tf.Tensor) {
  const predictions = m.predict(x) as tf.Tensor;
  const { loss, grads } = lossAndGradients(m, x, labels);
  return { predictions, loss, grads, moving: movingStatistics(m).map((t) => t.clone()) };
}

function expectSameObservations(got: ReturnType<typeof observe>, want: ReturnType<typeof observe>) {
  expectCloseTensors(got.predictions, want.predictions, 'predictions');
  expectCloseTensors(got.loss, want.loss, 'loss');
  expect(got.grads.length).toBe(want.grads.length);
  got.grads.forEach((g, k) => expectCloseTensors(g, want.grads[k], `gradient ${k}`));
  got.moving.forEach((s, k) => expectCloseTensors(s, want.moving[k], `moving statistic ${k}`));
}

/** model.fit for `steps` batches of N with plain SGD; returns the losses and the final weights. */
async function fit(m: tf.LayersModel, x: tf.Tensor, labels: tf.Tensor) {
  m.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  const history = await m.fit(x, labels, { batchSize: N, epochs: 2, shuffle: false, verbose: 0 });
  return { losses: history.history.loss as number[], weights: m.getWeights() };
}

/** A pair of models with the same random weights: `format` and `twin`. */
function twins(format: Format, twinFormat: Format, seed: number) {
  const a = model(format);
  const b = model(twinFormat);
  const weights = randomWeights(a, rng(seed));
  a.setWeights(weights);
  b.setWeights(weights);
  return [a, b];
}

const toChannelsFirst = (x: tf.Tensor) => (x.rank === 4 ? x.transpose([0, 3, 1, 2]) : x);

registerWasmConv2DFilterGradient();

describe.each(BACKENDS)('%s backend', (backend) => {
  beforeAll(() => useBackend(backend));
  afterAll(() => uninstall());

  // Each case: the model run with install(), and the reference run on stock tfjs.
  const cases: { name: string; ours: Format; reference: Format }[] = [
    { name: 'Dense -> BatchNormalization', ours: 'dense', reference: 'dense' },
    { name: 'Conv2D -> BatchNormalization, channels-last', ours: 'channelsLast', reference: 'channelsLast' },
    { name: 'Conv2D -> BatchNormalization(axis 1), channels-first, against its channels-last twin', ours: 'channelsFirst', reference: 'channelsLast' },
  ];

  test.each(cases)('$name: predictions, loss, gradients and moving statistics', ({ ours, reference }) => {
    const r = rng(21);
    const [oursModel, referenceModel] = twins(ours, reference, 5);
    const { x, labels } = batch(reference, r);
    uninstall();
    const want = observe(referenceModel, x, labels);
    install();
    const got = observe(oursModel, ours === reference ? x : toChannelsFirst(x), labels);
    expectSameObservations(got, want);
  });

  test.each(cases)('$name: model.fit gives the same losses and weights', async ({ ours, reference }) => {
    const r = rng(22);
    const [oursModel, referenceModel] = twins(ours, reference, 6);
    const { x, labels } = batch(reference, r, 3 * N);
    uninstall();
    const want = await fit(referenceModel, x, labels);
    install();
    const got = await fit(oursModel, ours === reference ? x : toChannelsFirst(x), labels);
    expect(got.losses.length).toBe(2);
    got.losses.forEach((loss, k) => expectCloseTensors(tf.scalar(loss), tf.scalar(want.losses[k]), `loss of epoch ${k}`));
    got.weights.forEach((w, k) => expectCloseTensors(w, want.weights[k], `weight ${k}`));
  });

  test('no tensor leaks over training steps', async () => {
    install();
    const m = model('channelsFirst');
    const { x, labels } = batch('channelsFirst', rng(23), 2 * N);
    m.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const counts: number[] = [];
    for (let step = 0; step < 5; step++) {
      await m.fit(x, labels, { batchSize: N, epochs: 1, verbose: 0 });
      (m.predict(x) as tf.Tensor).dispose();
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts.slice(1)).size, `tensors after each step: ${counts.join(', ')}`).toBe(1);
  });

  test('uninstall() restores stock tfjs: the same predictions bit for bit, channels-first training throws again', () => {
    uninstall();
    const m = model('channelsFirst');
    m.setWeights(randomWeights(m, rng(24)));
    const { x, labels } = batch('channelsFirst', rng(25));
    const stockPredictions = values(m.predict(x) as tf.Tensor);
    install();
    expect(values(m.predict(x) as tf.Tensor)).not.toEqual(stockPredictions); // stock tfjs normalises along the wrong axis
    uninstall();
    expect(values(m.predict(x) as tf.Tensor)).toEqual(stockPredictions);
    expect(() => lossAndGradients(m, x, labels)).toThrow();
  });
});

test('the Conv2D filter gradient registered for wasm equals the cpu backend\'s', async () => {
  const r = rng(26);
  const x = r.normals(2 * 7 * 6 * 3);
  for (const [pad, dyShape] of [['valid', [2, 5, 4, 4]], ['same', [2, 7, 6, 4]]] as const) {
    const dy = r.normals(dyShape.reduce((a, b) => a * b, 1));
    const filterGradient = async (backend: (typeof BACKENDS)[number]) => {
      await useBackend(backend);
      const loss = (filter: tf.Tensor) => tf.conv2d(tf.tensor4d(x, [2, 7, 6, 3]), filter as tf.Tensor4D, 1, pad).mul(tf.tensor(dy, [...dyShape])).sum();
      return tf.grad(loss)(tf.zeros([3, 3, 3, 4]) as tf.Tensor4D);
    };
    const want = await filterGradient('cpu');
    expectCloseTensors(await filterGradient('wasm'), want, `filter gradient, padding ${pad}`);
  }
});
