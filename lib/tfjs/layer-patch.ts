/**
 * Training-mode BatchNormalization layers on our training kernel.
 *
 * tfjs-layers has no hook for a layer's training computation, so while installed,
 * `BatchNormalization.prototype.call` is replaced (and put back by uninstall): a call with
 * `training: true` on a backend that has our kernel runs TRAIN_KERNEL once and writes the moving
 * statistics it returns; every other call (inference, other backends, inputs we do not handle)
 * runs the original method, whose inference path runs FusedBatchNorm, ours where installed.
 *
 * The moving averages follow tfjs-layers: `moving = moving - (moving - batch) * (1 - momentum)`,
 * momentum 0.99 by default, with the biased batch variance. Unlike the original, this path also
 * trains channels-first layers (`axis: 1`) and layers with `scale: false` or `center: false`.
 */
import * as tf from '@tensorflow/tfjs';
import type { Tensor } from '@tensorflow/tfjs';

import { TRAIN_KERNEL, type TrainAttrs } from './training-kernels';

/** The members of tfjs-layers' BatchNormalization (private in its typings) that we read. */
interface LayerVariable {
  read(): Tensor;
  write(value: Tensor): unknown;
}
interface BatchNormalizationLayer {
  axis: number | readonly number[]; // a list when deserialised from a Keras 2 config
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma?: LayerVariable;
  beta?: LayerVariable;
  movingMean: LayerVariable;
  movingVariance: LayerVariable;
}
type Call = (this: BatchNormalizationLayer, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>) => Tensor | Tensor[];
interface LayerClass {
  prototype: { call: Call };
}

/** tfjs-layers' BatchNormalization class, from the registry tfjs keeps for deserialising models. */
function batchNormalizationClass(): LayerClass {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap.BatchNormalization as unknown as [LayerClass] | undefined;
  if (!entry) throw new Error('batchnorm/tfjs: tfjs-layers has not registered BatchNormalization');
  return entry[0];
}

/** The attributes of TRAIN_KERNEL for this layer and input, or `undefined` when we do not handle them. */
function trainAttrs(layer: BatchNormalizationLayer, x: Tensor): TrainAttrs | undefined {
  if (!tf.getKernel(TRAIN_KERNEL, tf.getBackend())) return undefined;
  if (x.dtype !== 'float32' || x.rank < 2) return undefined;
  // Keras 2 saves `axis` as a list (`"axis": [3]`), which tfjs-layers keeps and uses as a number
  // through JavaScript's coercion; read it the same way.
  const given = Number(layer.axis);
  if (!Number.isInteger(given)) return undefined;
  const axis = given < 0 ? given + x.rank : given;
  if (!(axis >= 0 && axis < x.rank)) return undefined;
  if (x.size / x.shape[axis] < 2) return undefined; // one value per channel: our API refuses it
  const momentum = 1 - layer.momentum;
  if (!(momentum >= 0 && momentum <= 1) || !(layer.epsilon > 0 && layer.epsilon < Infinity)) return undefined;
  return { axis, epsilon: layer.epsilon, momentum };
}

function trainingCall(layer: BatchNormalizationLayer, x: Tensor, attrs: TrainAttrs): Tensor {
  return tf.tidy(() => {
    const channels = [x.shape[attrs.axis]];
    const inputs = {
      x,
      scale: layer.scale ? layer.gamma!.read() : tf.ones(channels),
      offset: layer.center ? layer.beta!.read() : tf.zeros(channels),
      movingMean: layer.movingMean.read(),
      movingVariance: layer.movingVariance.read(),
    };
    const [y, , , movingMean, movingVariance] = tf.engine().runKernel(TRAIN_KERNEL, inputs, attrs) as Tensor[];
    layer.movingMean.write(movingMean);
    layer.movingVariance.write(movingVariance);
    return y;
  });
}

/** Replaces BatchNormalization's `call`; returns the function that puts the original back. */
export function patchBatchNormalization(): () => void {
  const prototype = batchNormalizationClass().prototype;
  const original = prototype.call;
  prototype.call = function call(this: BatchNormalizationLayer, inputs, kwargs) {
    const x = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
    const attrs = kwargs?.training && x ? trainAttrs(this, x) : undefined;
    return attrs ? trainingCall(this, x!, attrs) : original.call(this, inputs, kwargs);
  };
  return () => {
    prototype.call = original;
  };
}
