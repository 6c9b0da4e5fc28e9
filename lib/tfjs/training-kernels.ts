/**
 * Two kernels of our own and the gradient that links them: a BatchNormalization layer's whole
 * training forward is one native forwardTrain, and its whole backward one native backward
 * (stock tfjs runs tf.moments, i.e. Mean, Sub, Square, Mean with their transposes, then
 * FusedBatchNorm, and differentiates each of them).
 *
 * TRAIN_KERNEL
 *   inputs  x, scale [C], offset [C], movingMean [C], movingVariance [C] (all float32)
 *   attrs   axis (>= 0), epsilon, momentum (PyTorch convention: the weight of the batch)
 *   outputs y, mean [C], invStd [C], the updated movingMean and movingVariance [C]
 *   The moving variance takes the biased batch variance, as tfjs-layers does (it averages the
 *   variance of tf.moments). Gradients flow from y only.
 * BACKWARD_KERNEL
 *   inputs  dy, x, scale, mean, invStd;  attrs axis;  outputs dx, dscale [C], doffset [C]
 *
 * scale and offset are always given (ones and zeros for a layer without them), so that the
 * engine, which saves inputs for the backward by cloning them, never meets a missing one.
 */
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, KernelConfig, KernelFunc, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs';

import { backward, forwardTrain } from '../api';
import { differentiableBackward } from './differentiable-backward';
import { computeInto, type SupportedBackend } from './tensor-memory';

export const TRAIN_KERNEL = 'BatchnormNativeTrain';
export const BACKWARD_KERNEL = 'BatchnormNativeBackward';

export type TrainAttrs = {
  axis: number;
  epsilon: number;
  momentum: number;
};

type KernelArgs = Parameters<KernelFunc>[0];

function trainKernel(backendName: SupportedBackend) {
  return ({ inputs, attrs, backend }: KernelArgs): TensorInfo[] => {
    const { x, scale, offset, movingMean, movingVariance } = inputs as Record<string, TensorInfo>;
    const { axis, epsilon, momentum } = attrs as unknown as TrainAttrs;
    const channel = [x.shape[axis]];
    return computeInto(backendName, backend, [x.shape, channel, channel, channel, channel], (view, [y, mean, invStd, runningMean, runningVar]) => {
      runningMean.set(view(movingMean));
      runningVar.set(view(movingVariance));
      forwardTrain(view(x), x.shape, {
        axis,
        gamma: view(scale),
        beta: view(offset),
        eps: epsilon,
        momentum,
        unbiased: false,
        runningMean,
        runningVar,
        out: y,
        saveMean: mean,
        saveInvStd: invStd,
      });
    });
  };
}

function backwardKernel(backendName: SupportedBackend) {
  return ({ inputs, attrs, backend }: KernelArgs): TensorInfo[] => {
    const { dy, x, scale, mean, invStd } = inputs as Record<string, TensorInfo>;
    const { axis } = attrs as unknown as TrainAttrs;
    const channel = [x.shape[axis]];
    return computeInto(backendName, backend, [x.shape, channel, channel], (view, [dx, dgamma, dbeta]) => {
      backward(view(dy), view(x), x.shape, { axis, gamma: view(scale), saveMean: view(mean), saveInvStd: view(invStd), dx, dgamma, dbeta });
    });
  };
}

/** Our two kernels for one backend. */
export function trainingKernels(backendName: SupportedBackend): KernelConfig[] {
  return [
    { kernelName: TRAIN_KERNEL, backendName, kernelFunc: trainKernel(backendName) },
    { kernelName: BACKWARD_KERNEL, backendName, kernelFunc: backwardKernel(backendName) },
  ];
}

/**
 * The gradient of TRAIN_KERNEL: one BACKWARD_KERNEL call for x, scale and offset together, or,
 * when a gradient of this gradient is being taken, the same in differentiable tfjs ops.
 */
export const trainingGradient: GradConfig = {
  kernelName: TRAIN_KERNEL,
  inputsToSave: ['x', 'scale'],
  outputsToSave: [false, true, true, false, false],
  gradFunc: (dys: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [dy] = dys as Tensor[];
    const [x, scale, mean, invStd] = saved;
    const { axis, epsilon } = attrs as unknown as TrainAttrs;
    // The tape is on here only while an outer gradient is being taken, which needs this one's.
    const [dx, dscale, doffset] = tf.engine().isTapeOn()
      ? differentiableBackward(dy, x, scale, axis, epsilon)
      : (tf.engine().runKernel(BACKWARD_KERNEL, { dy, x, scale, mean, invStd }, { axis }) as Tensor[]);
    // y does not depend on the moving statistics (they are only updated); their gradient is 0.
    const noGradient = () => tf.zerosLike(mean);
    return { x: () => dx, scale: () => dscale, offset: () => doffset, movingMean: noGradient, movingVariance: noGradient };
  },
};
