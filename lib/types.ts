/** Public option and result types of the batchnorm API (SPEC sections 3 and 8). */

/** The activation fused after the normalisation (SPEC section 7). */
export type Activation = 'identity' | 'relu';

/** Options of the fused forward passes (SPEC section 7). */
export interface FusedForwardOptions {
  /**
   * `'relu'`: `y = relu(pre)`, `relu(v) = v > 0 ? v : 0` (NaN stays NaN). Default `'identity'`:
   * `y = pre`.
   */
  activation?: Activation;
  /**
   * Added after the affine map, before the activation: `pre = gamma * xhat + beta + residual`
   * (a residual network's skip branch). Length of `x`; `out` may be this very array (in place),
   * but it may not share memory with `x`.
   */
  residual?: Float32Array | null;
}

/** Options shared by the forward and backward passes. */
export interface CommonOptions {
  /** Channel axis, an integer in [-rank, rank); negative counts from the end (`-1` is channels-last). Default `1`. */
  axis?: number;
  /** Per-channel scale, `Float32Array(C)`. Absent (or null) means 1 (affine off). */
  gamma?: Float32Array | null;
  /** Per-channel shift, `Float32Array(C)`. Absent (or null) means 0 (affine off). */
  beta?: Float32Array | null;
}

/** Options of {@link forwardTrain}. */
export interface ForwardTrainOptions extends CommonOptions, FusedForwardOptions {
  /** Added to the variance before the square root. Finite and > 0. Default `1e-5`. */
  eps?: number;
  /** PyTorch convention: `running = (1 - momentum) * running + momentum * batch`; in [0, 1]. Default `0.1`. */
  momentum?: number;
  /** Running mean, `Float32Array(C)`, updated in place when given. */
  runningMean?: Float32Array | null;
  /** Running variance, `Float32Array(C)`, updated in place when given. */
  runningVar?: Float32Array | null;
  /**
   * `true` (default, PyTorch): the running variance takes the unbiased batch variance
   * `var * M / (M - 1)`. `false` (Keras, ONNX): it takes the biased one.
   */
  unbiased?: boolean;
  /** Destination for `y`, length of `x`; may be `x` itself (in place). */
  out?: Float32Array | null;
  /** Destination for the batch mean, `Float32Array(C)`. */
  saveMean?: Float32Array | null;
  /** Destination for `1 / sqrt(var + eps)` (biased variance), `Float32Array(C)`. */
  saveInvStd?: Float32Array | null;
  /**
   * Synchronized training (SPEC section 8): normalise with these moments, the merge of every
   * replica's {@link batchMoments}, instead of the batch's own. The saved and running
   * statistics come from them (the unbiased variance with `moments.count`), and more than one
   * value per channel is required of `moments.count`, so this replica's own batch may be empty.
   * `x` is then read once.
   */
  moments?: Moments | null;
  /**
   * With `activation: 'relu'`: destination for the mask that backward needs, a `Uint8Array` of
   * `ceil(x.length / 8)` bytes; bit `i & 7` of byte `i >> 3` is 1 iff `y[i] > 0`. Refused
   * without `'relu'`.
   */
  reluMask?: Uint8Array | null;
}

/** Options of {@link forwardInference}. */
export interface ForwardInferenceOptions extends CommonOptions, FusedForwardOptions {
  /** Added to the running variance before the square root. Finite and > 0. Default `1e-5`. */
  eps?: number;
  /** Running mean, `Float32Array(C)`. Required. */
  runningMean: Float32Array;
  /** Running variance, `Float32Array(C)`. Required. */
  runningVar: Float32Array;
  /** Destination for `y`, length of `x`; may be `x` itself (in place). */
  out?: Float32Array | null;
}

/** Options of {@link backward}. */
export interface BackwardOptions extends CommonOptions {
  /** The batch mean saved by {@link forwardTrain}, `Float32Array(C)`. Required. */
  saveMean: Float32Array;
  /** The `1 / sqrt(var + eps)` saved by {@link forwardTrain}, `Float32Array(C)`. Required. */
  saveInvStd: Float32Array;
  /** The forward's shift, `Float32Array(C)`: checked, but unused (no gradient depends on it), so that one object serves both passes. */
  beta?: Float32Array | null;
  /**
   * `true`: the statistics were constants (inference-mode backward, e.g. a frozen layer):
   * `dx = dy * gamma * invStd`. Default `false`.
   */
  useGlobalStats?: boolean;
  /** Destination for `dx`, length of `x`; may be `dy` itself (in place). */
  dx?: Float32Array | null;
  /** Destination for `dgamma`, `Float32Array(C)`. */
  dgamma?: Float32Array | null;
  /** Destination for `dbeta`, `Float32Array(C)`. */
  dbeta?: Float32Array | null;
  /**
   * Synchronized training (SPEC section 8): the whole batch's gradient sums (every replica's
   * {@link backwardSums} added up) and its values per channel (the merged `moments.count`).
   * `dx` then comes from them; `dgamma` and `dbeta` stay this replica's own, as in PyTorch.
   * Not with `useGlobalStats`.
   */
  sums?: (GradientSums & { count: number }) | null;
  /**
   * With `sums`: this replica's own sums, as {@link backwardSums} returned them. `dgamma` and
   * `dbeta` then follow from them (`dbeta = sumDy`, `dgamma = sumDyXmu * saveInvStd`) and
   * `dy` and `x` are read once; without them, backward reduces `dy` and `x` for them first.
   */
  localSums?: GradientSums | null;
  /**
   * The forward's activation. With `'relu'`, `reluMask` is required and the incoming gradient is
   * masked first: `g = mask bit ? dy : 0` replaces `dy`. Default `'identity'`.
   */
  activation?: Activation;
  /** The mask that {@link forwardTrain} returned with `activation: 'relu'`; refused without `'relu'`. */
  reluMask?: Uint8Array | null;
  /**
   * The gradient of the forward's `residual`, `g` (`dy` masked by the ReLU, or `dy` itself):
   * a destination of the length of `x`, or `true` to allocate one. It may be `dy` itself, but
   * then `dx` may not be. Absent, null or `false`: not computed.
   */
  dresidual?: Float32Array | boolean | null;
}

/**
 * Per-channel moments of a batch (SPEC section 8): `count` values per channel, their `mean`
 * and `m2`, the sum of squared deviations from the mean, in float64.
 */
export interface Moments {
  /** Values per channel (M: the product of the dimensions other than the channel axis), a non-negative safe integer. */
  count: number;
  /** Per-channel mean, `Float64Array(C)`. */
  mean: Float64Array;
  /** Per-channel sum of squared deviations from the mean, `Float64Array(C)`. */
  m2: Float64Array;
}

/** Per-channel gradient sums (SPEC section 8), in float64. */
export interface GradientSums {
  /** sum(dy) */
  sumDy: Float64Array;
  /** sum(dy * (x - saveMean)) */
  sumDyXmu: Float64Array;
}

/** Options of {@link batchMoments}. */
export interface BatchMomentsOptions {
  /** Channel axis; negative counts from the end (`-1` is channels-last). Default `1`. */
  axis?: number;
  /** Destination for the mean, `Float64Array(C)`. */
  mean?: Float64Array | null;
  /** Destination for M2, `Float64Array(C)`. */
  m2?: Float64Array | null;
}

/** Options of {@link backwardSums}. */
export interface BackwardSumsOptions {
  /** Channel axis; negative counts from the end (`-1` is channels-last). Default `1`. */
  axis?: number;
  /** The batch mean saved by {@link forwardTrain} (with the merged moments), `Float32Array(C)`. Required. */
  saveMean: Float32Array;
  /** Destination for `sumDy`, `Float64Array(C)`. */
  sumDy?: Float64Array | null;
  /** Destination for `sumDyXmu`, `Float64Array(C)`. */
  sumDyXmu?: Float64Array | null;
  /** The forward's activation (SPEC section 7): with `'relu'`, the sums are of the masked gradient. */
  activation?: Activation;
  /** With `activation: 'relu'`: the mask {@link forwardTrain} returned. Required there, refused otherwise. */
  reluMask?: Uint8Array | null;
}

/** Result of {@link backwardSums}: this batch's sums, and its values per channel. */
export interface BackwardSumsResult extends GradientSums {
  /** This batch's values per channel (M). */
  count: number;
}

/** Result of {@link forwardTrain}. */
export interface ForwardTrainResult {
  /** The normalised output (the `out` destination when one was given). */
  y: Float32Array;
  /** Per-channel batch mean. */
  saveMean: Float32Array;
  /** Per-channel `1 / sqrt(var + eps)`, biased variance. */
  saveInvStd: Float32Array;
  /** With `activation: 'relu'`: the bit-packed `y > 0` mask for {@link backward}. */
  reluMask?: Uint8Array;
}

/** Result of {@link backward}. */
export interface BackwardResult {
  /** Gradient with respect to `x`. */
  dx: Float32Array;
  /** Gradient with respect to `gamma` (computed even when `gamma` is absent). */
  dgamma: Float32Array;
  /** Gradient with respect to `beta` (computed even when `beta` is absent). */
  dbeta: Float32Array;
  /** Gradient with respect to the forward's `residual`, when `dresidual` asked for it. */
  dresidual?: Float32Array;
}

/** What {@link backendInfo} reports. */
export interface BackendInfo {
  /** `'native'` when the C++ addon is in use, else `'js'`. */
  backend: 'native' | 'js';
  /** The kernel instruction set in use; `'js'` on the JavaScript backend. */
  isa: 'avx512' | 'avx2' | 'neon' | 'scalar' | 'js';
  /** Threads the native kernels may use; always 1 on the JavaScript backend. */
  threads: number;
  /** The package version. */
  version: string;
  /** Why the JavaScript backend is in use, when it is. */
  fallbackReason?: string;
}
