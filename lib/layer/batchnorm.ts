/**
 * `BatchNorm`: a batch normalisation layer for training pipelines, with PyTorch's conventions
 * (`new BatchNorm(C, {...})`, like `torch.nn.BatchNorm2d`) or Keras's
 * (`BatchNorm.fromKeras(C, {...})`, like `keras.layers.BatchNormalization`).
 */
import type { Collective } from '../collective/collective';
import { BatchNormRangeError, BatchNormStateError, expected } from '../errors';
import { overwrittenOutput } from '../outputs';
import { checkOverlaps, checkStillAttached } from '../validate';
import { layerBackward } from './backward';
import { booleanOption, float32Array, numberOption, optionalFloat32Array, optionsObject } from './checks';
import { checkInput, evalForward, trainForward, type Saved } from './forward';
import { residualGradient, residualInput } from './fusion';
import { runAsync, runSync, type Steps } from './kernel-calls';
import {
  checkL1Allowed,
  checkRenormAllowed,
  kerasToTorchOptions,
  l1Option,
  renormOption,
  resolveOptions,
  type BatchNormOptions,
  type KerasBatchNormOptions,
  type LayerConfig,
  type RenormClipping,
} from './options';
import { seededRandom } from './random';
import { ReusedOutputs } from './reused-outputs';
import { getKerasWeights, kerasWeightNames, loadStateDict, setKerasWeights, toStateDict, type StateDict } from './state-dict';
import type { Activation } from '../types';

/** A learnable parameter and its gradient, for an optimizer to update in place. */
export interface Parameter {
  name: 'gamma' | 'beta';
  value: Float32Array;
  grad: Float32Array;
}

/** Options of {@link BatchNorm.forward}. */
export interface LayerForwardOptions {
  /**
   * Destination for `y`, the length of `x`; it may be `residual`, and in eval mode `x` itself
   * (then a layer with gamma refuses the backward of that forward: dL/dgamma needs `x`).
   * Absent or null: a new array (the layer's own under `reuseOutputs`).
   */
  out?: Float32Array | null;
  /**
   * Added after the normalisation, before the layer's activation: `y = act(bn(x) + residual)`
   * (a residual block's skip branch, SPEC section 7). The length of `x`; it may not share
   * memory with `x`. Absent or null: none.
   */
  residual?: Float32Array | null;
}

/** Options of {@link BatchNorm.backward}. */
export interface LayerBackwardOptions {
  /** Destination for `dx`, the length of `x`; it may be `dy` itself. Absent or null: a new array (the layer's own under `reuseOutputs`). */
  dx?: Float32Array | null;
  /**
   * Receives dL/dresidual for the last forward's `residual` (`dy` masked by the ReLU, or `dy`
   * itself): the length of `x`; it may be `dy` itself (then `dx` may not be). Only after a
   * forward with a `residual`. Absent or null: not written.
   */
  dresidual?: Float32Array | null;
}

/** A per-channel array initialised by `init`. */
function initialised(C: number, init: LayerConfig['gammaInit'], seed: number): Float32Array {
  if (init === 'ones') return new Float32Array(C).fill(1);
  if (init === 'zeros') return new Float32Array(C);
  const random = seededRandom(seed);
  return Float32Array.from({ length: C }, () => 1 + 0.02 * random.normal()); // N(1, 0.02), as DCGAN
}

/**
 * A batch normalisation layer over channel axis `axis` of dense row-major `Float32Array`
 * tensors.
 *
 * - `train()` mode (the default) normalises with batch statistics and updates the running
 *   ones; `eval()` mode uses the running statistics (batch statistics when the layer does not
 *   track them).
 * - `forward(x, shape)` returns `y`; `backward(dy)` returns `dx` for the last forward and adds
 *   the parameter gradients to `gradGamma` / `gradBeta` (PyTorch's `.grad`; `zeroGrad()`).
 *   `x` must not change between the two.
 * - With `activation: 'relu'` the layer is BatchNorm + ReLU, and `forward(x, shape,
 *   { residual })` adds a residual before the activation (a residual block's
 *   `relu(bn(x) + z)`); `backward(dy, { dresidual })` then also writes dL/dresidual (SPEC
 *   section 7). In eval mode with relu, backward reads where the ReLU passed from the forward's
 *   `y`, which must then not change either.
 * - One call at a time: a call while an async call on the same layer runs throws.
 * - With a `collective` (SPEC section 8), training-mode calls synchronize their statistics
 *   with the other replicas: every replica must make the same calls in the same order.
 */
export class BatchNorm {
  /** Number of channels C. */
  readonly numFeatures: number;
  /** Channel axis; negative counts from the end. */
  readonly axis: number;
  /** Added to the variance. */
  readonly eps: number;
  /** PyTorch convention; `null` is the cumulative average. */
  readonly momentum: number | null;
  /** Whether the layer keeps running statistics. */
  readonly trackRunningStats: boolean;
  /** Whether the running variance takes the unbiased batch variance (PyTorch) or the biased one (Keras). */
  readonly unbiased: boolean;
  /** Ghost batch size along the leading axis, or null. */
  readonly virtualBatchSize: number | null;
  /** Applied after the normalisation (and the residual): `'identity'` or `'relu'`. */
  readonly activation: Activation;
  /** Scale, `weight` in PyTorch; null without one. */
  readonly gamma: Float32Array | null;
  /** Shift, `bias` in PyTorch; null without one. */
  readonly beta: Float32Array | null;
  /** Accumulated dL/dgamma (plus the L1 term); null without gamma. */
  readonly gradGamma: Float32Array | null;
  /** Accumulated dL/dbeta; null without beta. */
  readonly gradBeta: Float32Array | null;
  /** Running mean (Keras `moving_mean`); null when not tracked. */
  readonly runningMean: Float32Array | null;
  /** Running variance (Keras `moving_variance`); null when not tracked. */
  readonly runningVar: Float32Array | null;
  /** The collective that training-mode forward and backward synchronize through, or null. */
  readonly collective: Collective | null;
  /** Training batches seen (each ghost batch counts); drives `momentum: null`. */
  numBatchesTracked = 0;

  readonly #config: LayerConfig;
  #training = true;
  #l1: number;
  #renorm: RenormClipping | null;
  #saved: Saved | null = null;
  #busy = false;
  /** The layer's own arrays for y and dx, under `reuseOutputs`. */
  readonly #reused: { y: ReusedOutputs; dx: ReusedOutputs } | null;

  /**
   * @param numFeatures the channel count C
   * @param options PyTorch's names and defaults: `axis = 1`, `eps = 1e-5`, `momentum = 0.1`
   *   (`null`: cumulative average), `affine = true`, `trackRunningStats = true`,
   *   `gammaInit = 'ones'`; and `l1`, `virtualBatchSize`, `renorm`, `collective`, `activation`
   * @throws TypeError / RangeError with a `code` for an invalid option
   */
  constructor(numFeatures: number, options?: BatchNormOptions) {
    const config = resolveOptions(numFeatures, options);
    const C = config.numFeatures;
    this.#config = config;
    this.numFeatures = C;
    this.axis = config.axis;
    this.eps = config.eps;
    this.momentum = config.momentum;
    this.trackRunningStats = config.trackRunningStats;
    this.unbiased = config.unbiased;
    this.virtualBatchSize = config.virtualBatchSize;
    this.activation = config.activation;
    this.gamma = config.scale ? initialised(C, config.gammaInit, config.seed) : null;
    this.beta = config.center ? new Float32Array(C) : null;
    this.gradGamma = config.scale ? new Float32Array(C) : null;
    this.gradBeta = config.center ? new Float32Array(C) : null;
    this.runningMean = config.trackRunningStats ? new Float32Array(C) : null;
    this.runningVar = config.trackRunningStats ? new Float32Array(C).fill(1) : null;
    this.collective = config.collective;
    this.#l1 = config.l1;
    this.#renorm = config.renorm;
    this.#reused = config.reuseOutputs ? { y: new ReusedOutputs(), dx: new ReusedOutputs() } : null;
  }

  /**
   * A layer with Keras's semantics: `axis = -1`, `momentum = 0.99` meaning
   * `moving = momentum * moving + (1 - momentum) * batch`, `epsilon = 1e-3`, `center`,
   * `scale`, `gammaInitializer`, and a moving variance updated with the biased batch variance.
   */
  static fromKeras(numFeatures: number, options?: KerasBatchNormOptions): BatchNorm {
    return new BatchNorm(numFeatures, kerasToTorchOptions(options));
  }

  /** The resolved options: `new BatchNorm(n, layer.options())` builds a layer like this one. */
  options(): BatchNormOptions {
    const { numFeatures: _, ...options } = this.#config;
    return { ...options, l1: this.#l1, renorm: this.renorm };
  }

  /** Whether the layer is in training mode. */
  get training(): boolean {
    return this.#training;
  }

  /** Sets training mode (`true`, the default) or eval mode; returns the layer. */
  train(mode = true): this {
    const training = booleanOption(mode, 'mode', true);
    return this.#exclusive(() => {
      this.#training = training;
      return this;
    });
  }

  /** Sets eval mode; returns the layer. */
  eval(): this {
    return this.train(false);
  }

  /** L1 strength on gamma: each `backward` adds `l1 * sign(gamma)` to `gradGamma`. */
  get l1(): number {
    return this.#l1;
  }

  set l1(value: number) {
    const l1 = l1Option(value, 'l1');
    checkL1Allowed(l1, this.gamma !== null);
    this.#exclusive(() => (this.#l1 = l1));
  }

  /**
   * Batch renormalisation's clipping, or null (off); may change during training, as the paper's
   * schedule does. A copy: set the property to change it.
   */
  get renorm(): RenormClipping | null {
    return this.#renorm && { ...this.#renorm };
  }

  set renorm(value: RenormClipping | null) {
    const renorm = renormOption(value, 'renorm');
    checkRenormAllowed(renorm, this.trackRunningStats);
    this.#exclusive(() => (this.#renorm = renorm));
  }

  /**
   * Normalises `x` (dense, of `shape`, channel axis `axis`) and returns `y`: `opts.out` when
   * given, else a new array (the layer's own under `reuseOutputs`).
   */
  forward(x: Float32Array, shape: readonly number[], opts?: LayerForwardOptions): Float32Array {
    return this.#exclusive(() => this.#finishForward(runSync(this.#forwardSteps(x, shape, opts))));
  }

  /**
   * {@link forward} with the kernels off the JavaScript thread (on the native backend); except
   * in a worker thread for a layer synchronized inside the kernels, whose op runs on the
   * worker's own thread (lib/layer/synchronized.ts, exchangedCall).
   */
  async forwardAsync(x: Float32Array, shape: readonly number[], opts?: LayerForwardOptions): Promise<Float32Array> {
    return this.#exclusiveAsync(async () => this.#finishForward(await runAsync(this.#forwardSteps(x, shape, opts))));
  }

  /**
   * dx for the last forward's `x` (`opts.dx` when given, else a new array, the layer's own under
   * `reuseOutputs`); adds the parameter gradients to `gradGamma` / `gradBeta`.
   */
  backward(dy: Float32Array, opts?: LayerBackwardOptions): Float32Array {
    return this.#exclusive(() => this.#finishBackward(runSync(this.#backwardSteps(dy, opts))));
  }

  /** {@link backward} with the kernels off the JavaScript thread, as {@link forwardAsync}. */
  async backwardAsync(dy: Float32Array, opts?: LayerBackwardOptions): Promise<Float32Array> {
    return this.#exclusiveAsync(async () => this.#finishBackward(await runAsync(this.#backwardSteps(dy, opts))));
  }

  /** The learnable parameters with their gradients (none when `affine` is off). */
  parameters(): Parameter[] {
    const params: Parameter[] = [];
    if (this.gamma && this.gradGamma) params.push({ name: 'gamma', value: this.gamma, grad: this.gradGamma });
    if (this.beta && this.gradBeta) params.push({ name: 'beta', value: this.beta, grad: this.gradBeta });
    return params;
  }

  /** Sets `gradGamma` and `gradBeta` to zero. */
  zeroGrad(): void {
    this.#exclusive(() => {
      this.gradGamma?.fill(0);
      this.gradBeta?.fill(0);
    });
  }

  /** Clamps gamma into [min, max] in place (e.g. to keep |gamma| small while slimming). */
  clipGamma(min: number, max: number): void {
    const lo = numberOption(min, 'min');
    const hi = numberOption(max, 'max');
    if (!(lo <= hi)) throw new BatchNormRangeError('ERR_BATCHNORM_INVALID_OPTION', expected(`a number >= min (${lo})`, 'max', String(hi)));
    const gamma = this.gamma;
    if (!gamma) throw new BatchNormRangeError('ERR_BATCHNORM_INVALID_OPTION', expected('a layer with gamma', 'clipGamma', 'one without (affine or scale off)'));
    this.#exclusive(() => gamma.forEach((g, c) => (gamma[c] = Math.min(hi, Math.max(lo, g)))));
  }

  /** PyTorch's `state_dict()`: copies under `weight`, `bias`, `running_mean`, `running_var`, `num_batches_tracked`. */
  stateDict(): StateDict {
    return this.#exclusive(() => toStateDict(this));
  }

  /** PyTorch's `load_state_dict()` (strict); nothing is written when a key or a length is wrong. */
  loadStateDict(state: StateDict): void {
    this.#exclusive(() => loadStateDict(this, state));
  }

  /** Keras's weight names in Keras's order: `gamma`, `beta`, `moving_mean`, `moving_variance` (those the layer has). */
  weightNames(): string[] {
    return kerasWeightNames(this);
  }

  /** Keras's `get_weights()`: copies, in the order of {@link weightNames}. */
  getWeights(): Float32Array[] {
    return this.#exclusive(() => getKerasWeights(this));
  }

  /** Keras's `set_weights()`: arrays in the order of {@link weightNames}; nothing is written when one is wrong. */
  setWeights(weights: readonly Float32Array[]): void {
    this.#exclusive(() => setKerasWeights(this, weights));
  }

  #forwardSteps(x: Float32Array, shape: readonly number[], opts: LayerForwardOptions | undefined): Steps<{ y: Float32Array; saved: Saved }> {
    const dims = checkInput(this, x, shape);
    const { runningMean, runningVar } = this;
    const evalMode = !this.#training && runningMean !== null && runningVar !== null;
    const o = optionsObject(opts, 'opts', ['out', 'residual']);
    const out = optionalFloat32Array(o.out, 'opts.out', x.length);
    const residual = residualInput(o.residual, x.length);
    // Training reads x again in backward (and twice under renorm): y may not overwrite it. y may
    // be the residual (each element is read before it is written); x and the residual may not
    // share memory.
    checkOverlaps(
      [
        { name: 'x', array: x, written: false },
        { name: 'opts.out', array: out, written: true },
        { name: 'opts.residual', array: residual, written: false, alone: true },
      ],
      [...(evalMode ? [['x', 'opts.out'] as [string, string]] : []), ['opts.residual', 'opts.out']],
    );
    const y = out ?? this.#reused?.y.take(x.length, [x, residual, this.#saved?.y ?? null], 'y') ?? overwrittenOutput(x.length, 'y');
    if (evalMode) return evalForward(this, { mean: runningMean, variance: runningVar }, x, dims, y, residual);
    return trainForward(this, x, dims, y, residual, this.#training ? this.collective : null); // eval mode never synchronizes (as PyTorch)
  }

  #backwardSteps(dyArg: Float32Array, opts: LayerBackwardOptions | undefined): Steps<Float32Array> {
    const saved = this.#lastForward();
    // The forward's arrays that backward reads again (eval mode with relu: where the ReLU passed,
    // from y) may have been transferred since; said so, rather than as a dy of the wrong length.
    const readsY = saved.useGlobalStats && saved.activation === 'relu';
    checkStillAttached([{ name: "x (the last forward's)", array: saved.x }, { name: "y (the last forward's)", array: readsY ? saved.y : null }]);
    if (saved.xOverwritten && this.gradGamma) {
      // As PyTorch's autograd refuses a backward through a tensor modified in place.
      throw new BatchNormStateError('ERR_BATCHNORM_INPUT_OVERWRITTEN', expected('x as the forward read it (dL/dgamma needs it)', 'backward', 'an eval-mode forward that wrote y over x (opts.out was x)'));
    }
    const dy = float32Array(dyArg, 'dy', saved.x.length);
    const o = optionsObject(opts, 'opts', ['dx', 'dresidual']);
    const dresidual = residualGradient(o.dresidual, dy.length, saved.residual);
    const dx = optionalFloat32Array(o.dx, 'opts.dx', dy.length) ?? this.#reused?.dx.take(dy.length, [dy, saved.x, dresidual], 'dx') ?? overwrittenOutput(dy.length, 'dx');
    checkOverlaps(
      [
        { name: 'dy', array: dy, written: false },
        { name: 'x', array: saved.x, written: false },
        { name: 'opts.dx', array: dx, written: true },
        { name: 'opts.dresidual', array: dresidual, written: true },
      ],
      [['dy', 'opts.dx'], ['dy', 'opts.dresidual']],
    );
    return layerBackward(this, saved, dy, dx, dresidual);
  }

  #finishForward(result: { y: Float32Array; saved: Saved }): Float32Array {
    this.#saved = result.saved;
    return result.y;
  }

  #lastForward(): Saved {
    if (!this.#saved) throw new BatchNormStateError('ERR_BATCHNORM_NO_FORWARD', expected('a forward call before', 'backward', 'none since the last backward'));
    return this.#saved;
  }

  #finishBackward(dx: Float32Array): Float32Array {
    this.#saved = null; // as PyTorch frees the graph: one backward per forward
    return dx;
  }

  #exclusive<T>(body: () => T): T {
    this.#checkUsable();
    return body();
  }

  async #exclusiveAsync<T>(body: () => Promise<T>): Promise<T> {
    this.#checkUsable();
    this.#busy = true;
    try {
      return await body();
    } finally {
      this.#busy = false;
    }
  }

  /** No call in flight, and the layer's own arrays still attached. */
  #checkUsable(): void {
    this.#checkIdle();
    // parameters() and the fields hand them out, and one may be transferred to another thread
    // (gradients sent away, say): then reads would throw a bare TypeError and writes vanish.
    checkStillAttached([
      { name: 'layer.gamma', array: this.gamma },
      { name: 'layer.beta', array: this.beta },
      { name: 'layer.gradGamma', array: this.gradGamma },
      { name: 'layer.gradBeta', array: this.gradBeta },
      { name: 'layer.runningMean', array: this.runningMean },
      { name: 'layer.runningVar', array: this.runningVar },
    ]);
  }

  #checkIdle(): void {
    if (this.#busy) throw new BatchNormStateError('ERR_BATCHNORM_BUSY', expected('no call in flight on this layer', 'the layer', 'a call while an async one is still running'));
  }
}
