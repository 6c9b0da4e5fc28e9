/**
 * Folding an eval-mode BatchNorm into its neighbouring layer, for inference. With
 * s = gamma / sqrt(runningVar + eps) and t = beta - runningMean * s, BN(z) = s * z + t per
 * channel, so
 *
 *     BN(W x + b)      = (s W) x + (s b + t)                 (BN after the layer)
 *     W' BN(x) + b'    = (W' diag(s)) x + (W' t + b')         (BN before a Linear)
 *
 * The new parameters are computed in float64 and rounded once. A BatchNorm with
 * `activation: 'relu'` folds into the layer before it (conv, BN, ReLU becomes conv', ReLU: the
 * ReLU stays, after the folded layer), not into the one after it (the ReLU sits between).
 */
import { rangeError } from '../errors';
import type { BatchNorm } from './batchnorm';
import { checkBatchNorm, checkChannels, checkLayer, type LayerParameters, type WeightedLayer } from './weighted-layer';

/** Per-channel scale s and shift t of the BN's eval-mode affine map. */
function affineOf(bn: BatchNorm): { scale: Float64Array; shift: Float64Array } {
  const { runningMean, runningVar } = bn;
  if (!runningMean || !runningVar) {
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'a BatchNorm with running statistics (eval mode is what folds)', 'bn', 'trackRunningStats: false');
  }
  const C = bn.numFeatures;
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    scale[c] = (bn.gamma ? bn.gamma[c] : 1) / Math.sqrt(runningVar[c] + bn.eps);
    shift[c] = (bn.beta ? bn.beta[c] : 0) - runningMean[c] * scale[c];
  }
  return { scale, shift };
}

/**
 * Folds `bn` into the Linear (`[out, in]`) or convolution (`[out, in, ...kernel]`) layer
 * before it, whose `out` must equal `bn.numFeatures`. Returns the new weight and bias; the
 * arguments are not modified. The BatchNorm's activation (and any residual it added) is not
 * folded: apply it after the folded layer.
 */
export function foldIntoPreceding(layer: WeightedLayer, bn: BatchNorm): LayerParameters {
  const l = checkLayer(layer, 'layer');
  checkBatchNorm(bn, 'bn');
  checkChannels(l.out, bn.numFeatures, 'layer.shape[0]');
  const { scale, shift } = affineOf(bn);
  const row = l.weight.length / l.out;
  const weight = l.weight.map((w, k) => w * scale[Math.floor(k / row)]);
  const bias = Float32Array.from(scale, (s, c) => (l.bias ? l.bias[c] : 0) * s + shift[c]);
  return { weight, shape: l.shape, bias };
}

/**
 * Folds `bn` into the Linear layer (`[out, in]`) after it, whose `in` must equal
 * `bn.numFeatures`. Returns the new weight and bias; the arguments are not modified.
 */
export function foldIntoFollowing(bn: BatchNorm, layer: WeightedLayer): LayerParameters {
  checkBatchNorm(bn, 'bn');
  const l = checkLayer(layer, 'layer');
  if (bn.activation !== 'identity') {
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', "a BatchNorm without activation (a ReLU between it and the layer does not fold)", 'bn.activation', `'${bn.activation}'`);
  }
  if (l.shape.length !== 2) {
    // A convolution after BN folds exactly only without zero padding; not offered.
    throw rangeError('ERR_BATCHNORM_SHAPE_MISMATCH', 'a Linear weight shape [out, in]', 'layer.shape', `[${l.shape.join(', ')}]`);
  }
  checkChannels(l.in, bn.numFeatures, 'layer.shape[1]');
  const { scale, shift } = affineOf(bn);
  const weight = l.weight.map((w, k) => w * scale[k % l.in]);
  const bias = new Float32Array(l.out);
  for (let o = 0; o < l.out; o++) {
    let sum = l.bias ? l.bias[o] : 0;
    for (let i = 0; i < l.in; i++) sum += l.weight[o * l.in + i] * shift[i];
    bias[o] = sum;
  }
  return { weight, shape: l.shape, bias };
}
