/**
 * FusedBatchNorm on our kernels: what `tf.batchNorm` and every inference-mode
 * BatchNormalization layer run. The original kernel's setup and dispose functions stay (the
 * wasm one binds its C function in setup, which the fallback below needs), and every call we do
 * not handle goes to the original kernel unchanged: dtypes other than float32, empty tensors,
 * full-size or otherwise broadcast parameters, an epsilon our API rejects.
 *
 * Handled: parameters of one value per channel along one axis (see channel-axis.ts), which
 * covers channels-last rank-1 parameters and the reshaped `[1, C, 1, 1]` ones tfjs-layers
 * passes for `axis: 1`, for which the stock cpu and wasm kernels give wrong results (they cycle
 * the parameters along the last axis whatever their shape).
 */
import type { FusedBatchNormAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { forwardInference } from '../api';
import { channelAxis } from './channel-axis';
import { computeInto, type SupportedBackend } from './tensor-memory';

/** tfjs's default, applied by the stock kernels when the attribute is missing. */
const DEFAULT_EPSILON = 0.001;

/** FusedBatchNorm's inputs; offset and scale are optional. */
interface Inputs {
  x: TensorInfo;
  mean: TensorInfo;
  variance: TensorInfo;
  offset?: TensorInfo | null;
  scale?: TensorInfo | null;
}

/** The channel axis of a call we handle, or `undefined` for the original kernel. */
function handledAxis({ x, mean, variance, offset, scale }: Inputs, eps: number): number | undefined {
  const tensors = [x, mean, variance, offset, scale].filter((t): t is TensorInfo => t != null);
  if (!tensors.every((t) => t.dtype === 'float32')) return undefined;
  if (x.shape.length < 2 || x.shape.includes(0)) return undefined;
  if (!(eps > 0 && eps < Infinity)) return undefined;
  return channelAxis(
    x.shape,
    tensors.slice(1).map((t) => t.shape),
  );
}

/** The FusedBatchNorm kernel of `original`'s backend, on our kernels where they apply. */
export function nativeFusedBatchNorm(original: KernelConfig): KernelConfig {
  const backendName = original.backendName as SupportedBackend;
  const kernelFunc = (args: Parameters<KernelFunc>[0]) => {
    const inputs = args.inputs as unknown as Inputs;
    const eps = (args.attrs as unknown as FusedBatchNormAttrs | undefined)?.varianceEpsilon ?? DEFAULT_EPSILON;
    const axis = handledAxis(inputs, eps);
    if (axis === undefined) return original.kernelFunc(args);
    const { x, mean, variance, offset, scale } = inputs;
    const [y] = computeInto(backendName, args.backend, [x.shape], (view, [out]) => {
      forwardInference(view(x), x.shape, {
        axis,
        runningMean: view(mean),
        runningVar: view(variance),
        gamma: scale ? view(scale) : undefined,
        beta: offset ? view(offset) : undefined,
        eps,
        out,
      });
    });
    return y;
  };
  return { ...original, kernelFunc };
}
