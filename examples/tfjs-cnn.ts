/**
 * The small CNN of `npm run example:tfjs` (and of `npm run bench:tfjs`'s fit step) for 28x28x1
 * MNIST digits: a 3x3 convolution of 16 filters, BatchNormalization (channels-last), ReLU, 2x2
 * max pooling, a Dense layer of 64 units, BatchNormalization, ReLU, and a softmax layer.
 * `batchNorm: false` leaves the BatchNormalization layers out and nothing else, so the difference
 * in step time is the time BatchNorm takes.
 *
 * One convolution, not two: the backward of a convolution's filter on stock tfjs-cpu is a plain
 * loop over every element through TensorBuffer.get (about 0.3 us per multiply-add here), and a
 * second 16-channel convolution would take most of a step on the cpu backend on its own.
 */
import * as tf from '@tensorflow/tfjs';

export const IMAGE_SHAPE = [28, 28, 1];
export const CLASSES = 10;

export function mnistCnn(opts: { batchNorm: boolean; seed: number }): tf.LayersModel {
  let seed = opts.seed;
  const heNormal = () => tf.initializers.heNormal({ seed: seed++ });
  const bn = () => (opts.batchNorm ? [tf.layers.batchNormalization({})] : []);
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: IMAGE_SHAPE, filters: 16, kernelSize: 3, useBias: !opts.batchNorm, kernelInitializer: heNormal() }),
      ...bn(),
      tf.layers.activation({ activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 64, useBias: !opts.batchNorm, kernelInitializer: heNormal() }),
      ...bn(),
      tf.layers.activation({ activation: 'relu' }),
      tf.layers.dense({ units: CLASSES, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: seed++ }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}
