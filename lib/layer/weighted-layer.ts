/**
 * The parameters of a Linear or convolution layer next to a BatchNorm, in PyTorch's layout:
 * weight `[out, in]` (Linear) or `[out, in, ...kernel]` (convolution), bias `[out]`; and the
 * check of that BatchNorm argument (folding, slimming).
 */
import { describe, rangeError, typeError } from '../errors';
import { BatchNorm } from './batchnorm';
import { float32Array } from './checks';

/** A Linear (`shape [out, in]`) or convolution (`[out, in, ...kernel]`) layer's parameters. */
export interface WeightedLayer {
  /** Dense row-major weight of `shape`. */
  weight: Float32Array;
  /** The weight's shape, output channels first. */
  shape: readonly number[];
  /** `Float32Array(out)`; absent or null means no bias (zeros). */
  bias?: Float32Array | null;
}

/** A layer's parameters as this package returns them: always with a bias. */
export interface LayerParameters {
  weight: Float32Array;
  shape: number[];
  bias: Float32Array;
}

/** A checked layer: its shape as numbers, and the size of one output row / one input slice. */
export interface CheckedLayer {
  weight: Float32Array;
  bias: Float32Array | null;
  shape: number[];
  out: number;
  in: number;
  /** Values per (output, input) pair: the kernel size, 1 for a Linear. */
  kernel: number;
}

/** Checks a layer's weight, shape and bias against each other. */
export function checkLayer(layer: WeightedLayer, name: string): CheckedLayer {
  if (layer === null || typeof layer !== 'object') throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a { weight, shape, bias? } object', name, layer);
  const weight = float32Array(layer.weight, `${name}.weight`);
  const shape = layer.shape;
  if (!Array.isArray(shape) || shape.length < 2 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw typeError('ERR_BATCHNORM_INVALID_SHAPE', 'an array of at least 2 positive integers [out, in, ...kernel]', `${name}.shape`, shape);
  }
  const dims = Array.from(shape as number[]);
  const size = dims.reduce((p, d) => p * d, 1);
  if (size !== weight.length) {
    throw rangeError('ERR_BATCHNORM_SHAPE_MISMATCH', `a shape whose product equals the weight length ${weight.length}`, `${name}.shape`, `[${dims.join(', ')}]`);
  }
  const bias = layer.bias === undefined || layer.bias === null ? null : float32Array(layer.bias, `${name}.bias`, dims[0]);
  return { weight, bias, shape: dims, out: dims[0], in: dims[1], kernel: size / (dims[0] * dims[1]) };
}

/** Checks that a BatchNorm argument is one, before any of its fields is read (a `{}` has no numFeatures to compare). */
export function checkBatchNorm(bn: unknown, name: string): BatchNorm {
  if (!(bn instanceof BatchNorm)) throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a BatchNorm', name, bn);
  return bn;
}

/** Checks that a layer dimension equals the BatchNorm's channel count. */
export function checkChannels(actual: number, numFeatures: number, name: string): void {
  if (actual !== numFeatures) {
    throw rangeError('ERR_BATCHNORM_SHAPE_MISMATCH', `${numFeatures} (the BatchNorm's numFeatures)`, name, describe(actual));
  }
}
