/**
 * Network slimming (Liu et al. 2017): train with an L1 penalty on the BatchNorm gammas (the
 * layer's `l1` option), choose the channels with the largest |gamma| across all layers, and
 * cut them out of each BatchNorm and of its neighbours: the rows of the layer producing its
 * input and the input columns of the layer consuming its output. A pruned channel's output
 * was about beta (its gamma is small), so the network loses a little; fine-tuning recovers it.
 */
import { BatchNormTypeError, describe, expected, rangeError, typeError } from '../errors';
import { BatchNorm } from './batchnorm';
import { integerAtLeast, numberIn, numberOption } from './checks';
import { onlyKnownOptions, view } from '../validate';
import { checkBatchNorm, checkLayer, type LayerParameters, type WeightedLayer } from './weighted-layer';

/** How {@link channelMask} chooses: a share of all channels, or a |gamma| threshold. */
export type MaskCriterion = ({ keepRatio: number; threshold?: undefined } | { threshold: number; keepRatio?: undefined }) & {
  /** Channels each layer keeps whatever their |gamma| (a layer with none breaks the network). Default 1. */
  minPerLayer?: number;
};

/**
 * Per layer, which channels to keep (`true`), chosen by |gamma| globally across `layers`:
 * `keepRatio` keeps the ceil(keepRatio * total) largest, `threshold` keeps those with
 * |gamma| >= threshold. Ties go to the earlier layer and channel. A NaN gamma ranks below
 * every other, unlike `torch.sort`: it is never >= a threshold, and keepRatio drops it first.
 *
 * @throws TypeError / RangeError with a `code` for a bad criterion (an unknown key included)
 */
export function channelMask(layers: readonly BatchNorm[], criterion: MaskCriterion): boolean[][] {
  if (!Array.isArray(layers) || layers.some((l) => !(l instanceof BatchNorm) || l.gamma === null)) {
    throw new BatchNormTypeError('ERR_BATCHNORM_INVALID_TYPE', expected('an array of BatchNorm layers with gamma', 'layers', describe(layers)));
  }
  const rule = ruleOf(criterion);
  const candidates = layers.flatMap((l, layer) => Array.from(l.gamma as Float32Array, (g, channel) => ({ layer, channel, size: rankingSize(g) })));
  const masks = layers.map((l) => new Array<boolean>(l.numFeatures).fill(false));
  const byDecreasingSize = (a: (typeof candidates)[number], b: (typeof candidates)[number]) => b.size - a.size || a.layer - b.layer || a.channel - b.channel;
  const ranked = [...candidates].sort(byDecreasingSize);
  for (const c of ranked.slice(0, rule.keptCount(candidates.map((c) => c.size)))) masks[c.layer][c.channel] = true;
  masks.forEach((mask, layer) => {
    const own = ranked.filter((c) => c.layer === layer);
    for (const c of own.slice(0, rule.minPerLayer)) mask[c.channel] = true;
  });
  return masks;
}

/**
 * |gamma|, or -1 for a NaN gamma: NaN ranks below every |gamma| (even 0), so it is never
 * >= a threshold, as documented, and keepRatio drops it first, agreeing with threshold.
 * (torch.sort ranks NaN largest, which would keep a NaN channel over any real one.)
 */
function rankingSize(gamma: number): number {
  return Number.isNaN(gamma) ? -1 : Math.abs(gamma);
}

/** A checked criterion: how many of the ranked channels it keeps, and each layer's minimum. */
interface Rule {
  keptCount: (sizes: readonly number[]) => number;
  minPerLayer: number;
}

/** Reads and checks the criterion before anything is ranked: a non-number is a TypeError, a number out of range a RangeError. */
function ruleOf(criterion: MaskCriterion): Rule {
  const isObject = criterion !== null && typeof criterion === 'object';
  if (isObject) onlyKnownOptions(criterion, ['keepRatio', 'threshold', 'minPerLayer'], 'criterion'); // a misspelt minPerLayer would keep 1
  const { keepRatio, threshold, minPerLayer } = isObject ? criterion : ({} as Partial<MaskCriterion>);
  if ((keepRatio === undefined) === (threshold === undefined)) {
    throw typeError('ERR_BATCHNORM_INVALID_TYPE', '{ keepRatio } or { threshold }', 'criterion', criterion);
  }
  const perLayer = minPerLayer === undefined ? 1 : integerAtLeast(minPerLayer, 'criterion.minPerLayer', 0);
  if (keepRatio !== undefined) {
    const ratio = ratioOption(keepRatio, 'criterion.keepRatio');
    return { minPerLayer: perLayer, keptCount: (sizes) => Math.ceil(ratio * sizes.length - 1e-9) }; // 0.5 of 64 is 32, not 33 from rounding noise
  }
  const smallestKept = numberIn(threshold, 'criterion.threshold', undefined, 0, Infinity);
  return { minPerLayer: perLayer, keptCount: (sizes) => sizes.filter((s) => s >= smallestKept).length };
}

/** A number in (0, 1]. */
function ratioOption(value: unknown, name: string): number {
  const ratio = numberOption(value, name);
  if (!(ratio > 0 && ratio <= 1)) throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'a number in (0, 1]', name, describe(ratio));
  return ratio;
}

/** The indices a mask keeps, checked: booleans, one per channel, at least one kept. */
function keptIndices(mask: unknown, channels: number, name: string): number[] {
  if (!Array.isArray(mask) || mask.some((m) => typeof m !== 'boolean')) {
    throw new BatchNormTypeError('ERR_BATCHNORM_INVALID_TYPE', expected('an array of booleans', name, describe(mask)));
  }
  if (mask.length !== channels) throw rangeError('ERR_BATCHNORM_LENGTH_MISMATCH', `${channels} entries (one per channel)`, name, `${mask.length}`);
  const kept = mask.flatMap((keep, c) => (keep ? [c] : []));
  if (kept.length === 0) throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'at least one channel kept', name, 'none');
  return kept;
}

/** The values of `a` at `indices`. */
function pick(a: Float32Array, indices: readonly number[]): Float32Array {
  return Float32Array.from(indices, (i) => a[i]);
}

/**
 * A smaller BatchNorm with only the channels `mask` keeps (same options, mode, parameters and
 * running statistics for those channels; zero gradients), and the kept channel indices.
 */
export function prune(bn: BatchNorm, mask: readonly boolean[]): { layer: BatchNorm; kept: number[] } {
  checkBatchNorm(bn, 'bn');
  const kept = keptIndices(mask, bn.numFeatures, 'mask');
  const layer = new BatchNorm(kept.length, bn.options()).train(bn.training);
  const state = bn.stateDict();
  for (const [key, value] of Object.entries(state)) if (value instanceof Float32Array) state[key] = pick(value, kept);
  layer.loadStateDict(state);
  return { layer, kept };
}

/** Checks kept indices against a dimension: an array of numbers (else a TypeError), non-empty and in range (else a RangeError). */
function checkIndices(kept: readonly number[], size: number, name: string): void {
  if (!Array.isArray(kept) || kept.some((k) => typeof k !== 'number')) {
    throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'an array of channel indices', name, kept);
  }
  if (kept.length === 0 || kept.some((k) => !Number.isInteger(k) || k < 0 || k >= size)) {
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', `a non-empty array of indices in [0, ${size})`, name, describe(kept));
  }
}

/**
 * The layer producing a pruned BatchNorm's input, with only the `kept` output channels: rows
 * of a Linear `[out, in]`, filters of a convolution `[out, in, ...kernel]`, and the bias.
 */
export function pruneOutputs(layer: WeightedLayer, kept: readonly number[]): LayerParameters {
  const l = checkLayer(layer, 'layer');
  checkIndices(kept, l.out, 'kept');
  const row = l.weight.length / l.out;
  const weight = new Float32Array(kept.length * row);
  kept.forEach((o, k) => weight.set(view(l.weight, o * row, (o + 1) * row), k * row));
  const bias = l.bias ? pick(l.bias, kept) : new Float32Array(kept.length);
  return { weight, shape: [kept.length, ...l.shape.slice(1)], bias };
}

/**
 * The layer consuming a pruned BatchNorm's output (after the activation), with only the
 * `kept` input channels: columns of a Linear `[out, in]`, input planes of a convolution.
 */
export function pruneInputs(layer: WeightedLayer, kept: readonly number[]): LayerParameters {
  const l = checkLayer(layer, 'layer');
  checkIndices(kept, l.in, 'kept');
  const weight = new Float32Array(l.out * kept.length * l.kernel);
  for (let o = 0; o < l.out; o++) {
    kept.forEach((i, k) => {
      const from = (o * l.in + i) * l.kernel;
      weight.set(view(l.weight, from, from + l.kernel), (o * kept.length + k) * l.kernel);
    });
  }
  const bias = l.bias ? new Float32Array(l.bias) : new Float32Array(l.out); // not slice(): a subclass's species
  return { weight, shape: [l.out, kept.length, ...l.shape.slice(2)], bias };
}
