/**
 * The layer's state in PyTorch's form (a dict keyed `weight`, `bias`, `running_mean`,
 * `running_var`, `num_batches_tracked`) and in Keras's (the list `[gamma, beta, moving_mean,
 * moving_variance]`, without the parameters the layer does not have). Loading checks every
 * key and length first and writes nothing when anything is wrong.
 */
import { BatchNormRangeError, BatchNormTypeError, describe, expected, rangeError } from '../errors';
import { float32Array } from './checks';

/** A state dict: named float32 tensors and integer scalars (`num_batches_tracked`). */
export type StateDict = Record<string, Float32Array | number>;

/** The parts of a layer that make up its state. */
export interface LayerTensors {
  readonly numFeatures: number;
  readonly gamma: Float32Array | null;
  readonly beta: Float32Array | null;
  readonly runningMean: Float32Array | null;
  readonly runningVar: Float32Array | null;
  numBatchesTracked: number;
}

const NUM_BATCHES_TRACKED = 'num_batches_tracked';

/** The layer's tensors, in order, with their PyTorch and Keras names (those it has). */
function tensors(layer: LayerTensors) {
  const all = [
    { torch: 'weight', keras: 'gamma', array: layer.gamma },
    { torch: 'bias', keras: 'beta', array: layer.beta },
    { torch: 'running_mean', keras: 'moving_mean', array: layer.runningMean },
    { torch: 'running_var', keras: 'moving_variance', array: layer.runningVar },
  ];
  return all.filter((t): t is (typeof all)[number] & { array: Float32Array } => t.array !== null);
}

/** PyTorch's `state_dict()`: copies of the layer's tensors under PyTorch's keys. */
export function toStateDict(layer: LayerTensors): StateDict {
  const state: StateDict = {};
  for (const t of tensors(layer)) state[t.torch] = t.array.slice();
  if (layer.runningMean) state[NUM_BATCHES_TRACKED] = layer.numBatchesTracked;
  return state;
}

/** PyTorch's `load_state_dict()` (strict): every key the layer has, no other, right lengths. */
export function loadStateDict(layer: LayerTensors, state: unknown): void {
  if (state === null || typeof state !== 'object' || Array.isArray(state)) {
    throw new BatchNormTypeError('ERR_BATCHNORM_INVALID_STATE_DICT', expected('a state dict object', 'state', describe(state)));
  }
  const dict = state as Record<string, unknown>;
  const targets = tensors(layer);
  const keys = targets.map((t) => t.torch);
  if (layer.runningMean) keys.push(NUM_BATCHES_TRACKED);
  const unexpected = Object.keys(dict).filter((k) => !keys.includes(k));
  if (unexpected.length > 0) {
    throw rangeError('ERR_BATCHNORM_INVALID_STATE_DICT', `only the keys ${keys.join(', ')}`, 'state', `unexpected key(s) ${unexpected.join(', ')}`);
  }
  const missing = keys.filter((k) => !(k in dict));
  if (missing.length > 0) {
    throw new BatchNormTypeError('ERR_BATCHNORM_INVALID_STATE_DICT', expected(`the keys ${keys.join(', ')}`, 'state', `a dict missing ${missing.join(', ')}`));
  }
  const values = targets.map((t) => float32Array(dict[t.torch], `state.${t.torch}`, layer.numFeatures));
  const count = layer.runningMean ? batchCount(dict[NUM_BATCHES_TRACKED]) : 0;
  targets.forEach((t, i) => t.array.set(values[i]));
  layer.numBatchesTracked = count;
}

function batchCount(value: unknown): number {
  const name = `state.${NUM_BATCHES_TRACKED}`;
  if (typeof value !== 'number') throw new BatchNormTypeError('ERR_BATCHNORM_INVALID_TYPE', expected('a number', name, describe(value)));
  if (!Number.isSafeInteger(value) || value < 0) throw rangeError('ERR_BATCHNORM_INVALID_STATE_DICT', 'a non-negative integer', name, describe(value));
  return value;
}

/** Keras's weight names, in Keras's order, for the tensors this layer has. */
export function kerasWeightNames(layer: LayerTensors): string[] {
  return tensors(layer).map((t) => t.keras);
}

/** Keras's `get_weights()`: copies, in the order gamma, beta, moving_mean, moving_variance. */
export function getKerasWeights(layer: LayerTensors): Float32Array[] {
  return tensors(layer).map((t) => t.array.slice());
}

/** Keras's `set_weights()`: as many arrays as {@link kerasWeightNames}, each of numFeatures values. */
export function setKerasWeights(layer: LayerTensors, weights: unknown): void {
  const targets = tensors(layer);
  const names = targets.map((t) => t.keras).join(', ');
  if (!Array.isArray(weights)) {
    throw new BatchNormTypeError('ERR_BATCHNORM_INVALID_TYPE', expected(`an array [${names}]`, 'weights', describe(weights)));
  }
  if (weights.length !== targets.length) {
    throw new BatchNormRangeError('ERR_BATCHNORM_INVALID_STATE_DICT', expected(`${targets.length} arrays [${names}]`, 'weights', `${weights.length}`));
  }
  const values = targets.map((t, i) => float32Array(weights[i], `weights[${i}] (${t.keras})`, layer.numFeatures));
  targets.forEach((t, i) => t.array.set(values[i]));
}
