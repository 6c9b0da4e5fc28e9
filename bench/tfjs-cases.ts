/**
 * The cases of `npm run bench:tfjs`, each prepared twice on one tfjs backend: stock tfjs and with
 * batchnorm/tfjs installed. run() puts the installation in the state its variant needs (a few
 * registry entries; microseconds) and does one operation; output() is what the two variants must
 * agree on.
 *
 * - inference: tf.batchNorm on a channels-last tensor with rank-1 parameters, the layout stock
 *   tfjs handles correctly.
 * - training: one BatchNormalization layer's training step: its forward with `training: true`
 *   and the backward of its output for x, gamma and beta (tf.engine().gradients with a given dy).
 * - fit: one training step (trainOnBatch, the step model.fit runs per batch) of the example's CNN
 *   (examples/tfjs-cnn.ts) on a batch of MNIST-shaped random digits; stock and ours train models
 *   with the same initial weights on the same batch.
 */
import * as tf from '@tensorflow/tfjs';

import { registerWasmConv2DFilterGradient } from '../examples/wasm-conv2d-filter-gradient';
import { CLASSES, IMAGE_SHAPE, mnistCnn } from '../examples/tfjs-cnn';
import { install, uninstall } from '../lib/tfjs';
import type { Prepared } from './backends/types';
import type { Limits } from './timing';

export type TfBackend = 'cpu' | 'wasm';
export type Variant = 'stock' | 'ours';
export const CASES = ['inference', 'training', 'fit'] as const;
export type CaseName = (typeof CASES)[number];

/** What the benchmark reports of a case. */
export interface CaseInfo {
  name: CaseName;
  what: string;
  shape: number[];
}

/** A case on one backend: its description, a Prepared per variant, and how long to time it. */
export interface PreparedCase {
  info: CaseInfo;
  variants: Record<Variant, Prepared>;
  limits: Limits;
}

/** Stock tfjs-cpu takes seconds per training step: at least 3 calls even so; fit steps vary more, so more. */
const LIMITS: Record<CaseName, Limits> = {
  inference: { minReps: 5, targetReps: 15, targetSeconds: 1, maxSeconds: 10 },
  training: { minReps: 3, targetReps: 10, targetSeconds: 1, maxSeconds: 30 },
  fit: { minReps: 8, targetReps: 15, targetSeconds: 15, maxSeconds: 60 },
};

let installed = false;
function useVariant(variant: Variant) {
  if ((variant === 'ours') === installed) return;
  if (variant === 'ours') install();
  else uninstall();
  installed = variant === 'ours';
}

let seed = 7;
const randomTensor = (shape: number[], mean = 0, std = 1) => tf.randomNormal(shape, mean, std, 'float32', seed++);

/** Keeps the last output of a variant (disposing the one before) and reads it for the check. */
function lastOutput() {
  let last: tf.Tensor | undefined;
  return {
    keep(t: tf.Tensor) {
      last?.dispose();
      last = t;
    },
    read: () => last!.dataSync() as Float32Array,
    dispose: () => last?.dispose(),
  };
}

function inference(shape: number[]): PreparedCase {
  const C = shape[shape.length - 1];
  const x = randomTensor(shape, 0.5, 3);
  const mean = randomTensor([C], 0.5, 0.2);
  const variance = tf.randomUniform([C], 2, 4);
  const offset = randomTensor([C]);
  const scale = randomTensor([C], 1, 0.5);
  const variant = (v: Variant): Prepared => {
    const out = lastOutput();
    return {
      run: () => {
        useVariant(v);
        out.keep(tf.batchNorm(x, mean, variance, offset, scale, 1e-3));
      },
      output: out.read,
      dispose: out.dispose,
    };
  };
  return {
    info: { name: 'inference', what: 'tf.batchNorm, channels-last', shape },
    variants: { stock: variant('stock'), ours: variant('ours') },
    limits: LIMITS.inference,
  };
}

function training(shape: number[]): PreparedCase {
  const x = randomTensor(shape, 0.5, 3);
  const dy = randomTensor(shape);
  const variant = (v: Variant): Prepared => {
    const layer = tf.layers.batchNormalization({});
    layer.build(shape);
    const weights = [x, ...layer.trainableWeights.map((w) => w.read())];
    const out = lastOutput();
    return {
      run: () => {
        useVariant(v);
        const { value, grads } = tf.engine().gradients(() => layer.apply(x, { training: true }) as tf.Tensor, weights, dy);
        tf.dispose([value, ...grads.slice(1)]);
        out.keep(grads[0]);
      },
      output: out.read,
      dispose: () => {
        out.dispose();
        for (const w of layer.weights) w.dispose();
      },
    };
  };
  return {
    info: { name: 'training', what: 'BatchNormalization layer: forward (training) + backward', shape },
    variants: { stock: variant('stock'), ours: variant('ours') },
    limits: LIMITS.training,
  };
}

function fit(batchSize: number): PreparedCase {
  const shape = [batchSize, ...IMAGE_SHAPE];
  const images = tf.randomUniform(shape, 0, 1, 'float32', seed++);
  const labels = tf.oneHot(tf.randomUniform([batchSize], 0, CLASSES, 'int32', seed++), CLASSES).toFloat();
  const variant = (v: Variant): Prepared => {
    const model = mnistCnn({ batchNorm: true, seed: 1 });
    let loss = NaN;
    return {
      run: async () => {
        useVariant(v);
        loss = ((await model.trainOnBatch(images, labels)) as number[])[0];
      },
      // The step's loss comes before its update: the weights after it show the gradients too.
      output: () => Float32Array.from([loss, ...model.trainableWeights.flatMap((w) => Array.from(w.read().dataSync() as Float32Array))]),
      dispose: () => {
        model.dispose();
      },
    };
  };
  return {
    info: { name: 'fit', what: "a training step of the example's CNN (trainOnBatch)", shape },
    variants: { stock: variant('stock'), ours: variant('ours') },
    limits: LIMITS.fit,
  };
}

/** Prepares a case on `backend`, with tensors created there (so no run moves data). */
export async function prepareCase(name: CaseName, backend: TfBackend, opts: { shape: number[]; batchSize: number }): Promise<PreparedCase> {
  registerWasmConv2DFilterGradient();
  await tf.setBackend(backend);
  await tf.ready();
  if (name === 'inference') return inference(opts.shape);
  if (name === 'training') return training(opts.shape);
  return fit(opts.batchSize);
}

/** Leaves tfjs stock, as the benchmark found it. */
export function restoreStock() {
  useVariant('stock');
}
