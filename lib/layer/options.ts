/**
 * The layer's options, PyTorch's and Keras's, checked and resolved into one plain
 * configuration. Both conventions end up as the same numbers: Keras's `momentum` m is
 * PyTorch's 1 - m, and Keras updates its moving variance with the biased batch variance.
 */
import { rankIn, type Collective } from '../collective/collective';
import { describe, rangeError, typeError } from '../errors';
import type { Activation } from '../types';
import { booleanOption, integerAtLeast, numberIn, numberOption, oneOf, optionsObject } from './checks';

/** How gamma starts: 1 (PyTorch, Keras), 0 (zero-init of a residual branch's last BN) or N(1, 0.02). */
export type GammaInit = 'ones' | 'zeros' | 'normal';

/** Batch renormalisation (Ioffe 2017): the clipping of `r` to [1/rmax, rmax] and `d` to [-dmax, dmax]. */
export interface RenormClipping {
  /** >= 1; 1 makes `r` always 1 (plain batch norm). */
  rmax: number;
  /** >= 0; 0 makes `d` always 0 (plain batch norm). */
  dmax: number;
}

/** Options of the layer beyond PyTorch's and Keras's own, shared by both constructors. */
export interface BatchNormExtensions {
  /**
   * Fused after the normalisation (and the residual, when `forward` gets one): `'relu'` makes
   * the layer BatchNorm + ReLU (SPEC section 7). Default `'identity'`.
   */
  activation?: Activation;
  /**
   * L1 penalty on gamma (network slimming): `backward` adds `l1 * sign(gamma)` to `gradGamma`.
   * Finite and >= 0; above 0 only on a layer with gamma. Default 0.
   */
  l1?: number;
  /**
   * Ghost batch normalisation: statistics per sub-batch of this many samples along the leading
   * axis, an integer >= 1 (which must divide the batch). Default: the whole batch.
   */
  virtualBatchSize?: number | null;
  /** Batch renormalisation with this clipping; needs running statistics. Default off. */
  renorm?: RenormClipping | null;
  /**
   * `true`: `forward` and `backward` return arrays of the layer's own, written again by later
   * calls, instead of new ones (a training loop then allocates no tensor-sized array per step). `forward`'s
   * stays valid until the layer's next forward (a second forward before the first one's
   * backward writes elsewhere); `backward`'s until its next backward. Destinations given to a
   * call (`out`, `dx`) take precedence. Default false.
   */
  reuseOutputs?: boolean;
  /**
   * Synchronized batch normalisation (SPEC section 8, PyTorch's SyncBatchNorm): in training
   * mode, forward normalises with the statistics of the whole batch, split across the
   * collective's replicas, and backward uses the whole batch's gradient sums. Each replica's
   * `gradGamma` / `gradBeta` stay its own: average them with its other gradients. `forward` and
   * `backward` need a synchronous collective (e.g. `joinWorkerGroup(group, rank)`);
   * `forwardAsync` / `backwardAsync` take either kind. Not with virtualBatchSize. Default none.
   */
  collective?: Collective | null;
}

/** Options of `new BatchNorm(numFeatures, options)`, PyTorch's conventions and defaults. */
export interface BatchNormOptions extends BatchNormExtensions {
  /** Channel axis, an integer; negative counts from the end (checked against each input's rank). Default 1 (NCHW, `[N, C]`). */
  axis?: number;
  /** Added to the variance; finite and > 0. Default 1e-5. */
  eps?: number;
  /**
   * `running = (1 - momentum) * running + momentum * batch`, in [0, 1]. Default 0.1. `null`: the
   * cumulative average, momentum `1 / numBatchesTracked`.
   */
  momentum?: number | null;
  /** Learnable gamma and beta. Default true. */
  affine?: boolean;
  /** Learnable gamma only (Keras `scale`); defaults to `affine`. */
  scale?: boolean;
  /** Learnable beta only (Keras `center`); defaults to `affine`. */
  center?: boolean;
  /** Keep running statistics for eval mode. Default true; without them eval mode uses batch statistics. */
  trackRunningStats?: boolean;
  /** `true` (PyTorch, the default): the running variance takes the unbiased batch variance; `false` the biased one. */
  unbiased?: boolean;
  /** How gamma starts. Default 'ones'. */
  gammaInit?: GammaInit;
  /** Seed for `gammaInit: 'normal'`, an integer in [0, 2^32); random when absent. */
  seed?: number;
}

/** Options of `BatchNorm.fromKeras`, Keras's names and defaults. */
export interface KerasBatchNormOptions extends BatchNormExtensions {
  /** Channel axis. Default -1 (channels last). */
  axis?: number;
  /** Keras convention: `moving = momentum * moving + (1 - momentum) * batch`, in [0, 1]. Default 0.99. */
  momentum?: number;
  /** Added to the variance; finite and > 0. Default 1e-3. */
  epsilon?: number;
  /** Learnable beta. Default true. */
  center?: boolean;
  /** Learnable gamma. Default true. */
  scale?: boolean;
  /** How gamma starts. Default 'ones'. */
  gammaInitializer?: 'ones' | 'zeros';
}

/** A resolved, checked configuration. */
export interface LayerConfig {
  numFeatures: number;
  axis: number;
  eps: number;
  momentum: number | null;
  scale: boolean;
  center: boolean;
  trackRunningStats: boolean;
  unbiased: boolean;
  gammaInit: GammaInit;
  seed: number;
  l1: number;
  virtualBatchSize: number | null;
  renorm: RenormClipping | null;
  reuseOutputs: boolean;
  collective: Collective | null;
  activation: Activation;
}

/** `eps` / `epsilon`: finite and > 0, as the functional API requires. */
function epsOption(value: unknown, name: string, fallback: number): number {
  const e = numberOption(value, name, fallback);
  if (!(e > 0 && Number.isFinite(e))) {
    throw rangeError('ERR_BATCHNORM_INVALID_EPS', 'a finite number > 0', name, describe(e));
  }
  return e;
}

/** A momentum in [0, 1], the code the functional API uses for it. */
function momentumOption(value: unknown, name: string, fallback: number): number {
  const m = numberOption(value, name, fallback);
  if (!(m >= 0 && m <= 1)) {
    throw rangeError('ERR_BATCHNORM_INVALID_MOMENTUM', 'a number in [0, 1]', name, describe(m));
  }
  return m;
}

/** A channel axis: any integer here; it is checked against the rank of each input. */
function axisOption(value: unknown, name: string, fallback: number): number {
  const axis = numberOption(value, name, fallback);
  if (!Number.isSafeInteger(axis)) {
    throw rangeError('ERR_BATCHNORM_INVALID_AXIS', 'an integer', name, describe(axis));
  }
  return axis;
}

/** The L1 strength: finite and >= 0. */
export function l1Option(value: unknown, name: string): number {
  const l1 = numberIn(value, name, 0, 0, Infinity);
  if (l1 === Infinity) throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'a finite number >= 0', name, describe(l1));
  return l1;
}

/**
 * The generator's 32-bit seed: an integer in [0, 2^32), else random. Any other number would be
 * cut to 32 bits without a word (NaN and 2^40 both gave seed 0's gammas, 1.5 gave seed 1's).
 */
function seedOption(value: unknown, name: string): number {
  if (value === undefined) return Math.floor(Math.random() * 2 ** 32);
  const seed = integerAtLeast(value, name, 0);
  if (seed >= 2 ** 32) throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'an integer in [0, 2^32)', name, describe(seed));
  return seed;
}

/** Renorm clipping: `null`/absent (off) or `{ rmax >= 1, dmax >= 0 }`. */
export function renormOption(value: unknown, name: string): RenormClipping | null {
  if (value === undefined || value === null) return null;
  const o = optionsObject(value as RenormClipping, name, ['rmax', 'dmax']);
  return {
    rmax: numberIn(o.rmax, `${name}.rmax`, undefined, 1, Infinity),
    dmax: numberIn(o.dmax, `${name}.dmax`, undefined, 0, Infinity),
  };
}

/** Renorm needs running statistics: r and d compare the batch with them. */
export function checkRenormAllowed(renorm: RenormClipping | null, trackRunningStats: boolean): void {
  if (renorm && !trackRunningStats) {
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'no renorm on a layer without running statistics', 'opts.renorm', `{ rmax: ${renorm.rmax}, dmax: ${renorm.dmax} }`);
  }
}

/** A collective: `null`/absent (none) or an object with `rank`, `size` and `allReduceSum`. */
function collectiveOption(value: unknown, name: string): Collective | null {
  if (value === undefined || value === null) return null;
  const what = 'a collective { rank, size, allReduceSum }';
  if (typeof value !== 'object') throw typeError('ERR_BATCHNORM_INVALID_TYPE', what, name, value);
  const c = value as Collective;
  const size = integerAtLeast(c.size, `${name}.size`, 1);
  rankIn(c.rank, size, `${name}.rank`);
  if (typeof c.allReduceSum !== 'function') throw typeError('ERR_BATCHNORM_INVALID_TYPE', what, name, value);
  booleanOption(c.async, `${name}.async`, false);
  return c;
}

/** Ghost batches are per replica: their statistics must not be merged across replicas. */
function checkCollectiveAllowed(collective: Collective | null, virtualBatchSize: number | null): void {
  if (collective && virtualBatchSize !== null) {
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'no collective on a layer with virtualBatchSize (ghost batches are per replica)', 'opts.collective', `a collective with virtualBatchSize ${virtualBatchSize}`);
  }
}

/** An L1 penalty needs a gamma to act on. */
export function checkL1Allowed(l1: number, hasGamma: boolean): void {
  if (l1 > 0 && !hasGamma) {
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', '0 on a layer without gamma', 'opts.l1', describe(l1));
  }
}

/** The options both constructors take (BatchNormExtensions). */
const EXTENSIONS = ['activation', 'l1', 'virtualBatchSize', 'renorm', 'reuseOutputs', 'collective'] as const;
const TORCH_OPTIONS = ['axis', 'eps', 'momentum', 'affine', 'scale', 'center', 'trackRunningStats', 'unbiased', 'gammaInit', 'seed', ...EXTENSIONS] as const;
const KERAS_OPTIONS = ['axis', 'momentum', 'epsilon', 'center', 'scale', 'gammaInitializer', ...EXTENSIONS] as const;

/** Resolves and checks the options of `new BatchNorm(numFeatures, options)`. */
export function resolveOptions(numFeatures: unknown, options: BatchNormOptions | undefined): LayerConfig {
  const C = integerAtLeast(numFeatures, 'numFeatures', 1);
  const o = optionsObject(options, 'opts', TORCH_OPTIONS);
  const affine = booleanOption(o.affine, 'opts.affine', true);
  const vbs = o.virtualBatchSize;
  const config: LayerConfig = {
    numFeatures: C,
    axis: axisOption(o.axis, 'opts.axis', 1),
    eps: epsOption(o.eps, 'opts.eps', 1e-5),
    momentum: o.momentum === null ? null : momentumOption(o.momentum, 'opts.momentum', 0.1),
    scale: booleanOption(o.scale, 'opts.scale', affine),
    center: booleanOption(o.center, 'opts.center', affine),
    trackRunningStats: booleanOption(o.trackRunningStats, 'opts.trackRunningStats', true),
    unbiased: booleanOption(o.unbiased, 'opts.unbiased', true),
    gammaInit: oneOf(o.gammaInit, 'opts.gammaInit', ['ones', 'zeros', 'normal'] as const, 'ones'),
    seed: seedOption(o.seed, 'opts.seed'),
    l1: l1Option(o.l1, 'opts.l1'),
    virtualBatchSize: vbs === undefined || vbs === null ? null : integerAtLeast(vbs, 'opts.virtualBatchSize', 1),
    renorm: renormOption(o.renorm, 'opts.renorm'),
    reuseOutputs: booleanOption(o.reuseOutputs, 'opts.reuseOutputs', false),
    collective: collectiveOption(o.collective, 'opts.collective'),
    activation: oneOf(o.activation, 'opts.activation', ['identity', 'relu'] as const, 'identity'),
  };
  checkRenormAllowed(config.renorm, config.trackRunningStats);
  checkCollectiveAllowed(config.collective, config.virtualBatchSize);
  checkL1Allowed(config.l1, config.scale);
  return config;
}

/**
 * Keras's options as PyTorch-style ones: momentum m becomes 1 - m, and the moving variance
 * takes the biased batch variance, as Keras's does.
 */
export function kerasToTorchOptions(options: KerasBatchNormOptions | undefined): BatchNormOptions {
  const o = optionsObject(options, 'opts', KERAS_OPTIONS);
  return {
    axis: axisOption(o.axis, 'opts.axis', -1),
    eps: epsOption(o.epsilon, 'opts.epsilon', 1e-3),
    momentum: 1 - momentumOption(o.momentum, 'opts.momentum', 0.99),
    scale: booleanOption(o.scale, 'opts.scale', true),
    center: booleanOption(o.center, 'opts.center', true),
    unbiased: false,
    gammaInit: oneOf(o.gammaInitializer, 'opts.gammaInitializer', ['ones', 'zeros'] as const, 'ones'),
    l1: o.l1,
    virtualBatchSize: o.virtualBatchSize,
    renorm: o.renorm,
    reuseOutputs: o.reuseOutputs,
    collective: o.collective,
    activation: o.activation,
  };
}
