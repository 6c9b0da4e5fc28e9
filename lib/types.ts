/** Public option and result types of the batchnorm API (SPEC section 3). */

/** Options shared by every operation. */
export interface CommonOptions {
  /** Channel axis; negative counts from the end (`-1` is channels-last). Default `1`. */
  axis?: number;
  /** Per-channel scale, `Float32Array(C)`. Absent means 1 (affine off). */
  gamma?: Float32Array;
  /** Per-channel shift, `Float32Array(C)`. Absent means 0 (affine off). */
  beta?: Float32Array;
}

/** Options of {@link forwardTrain}. */
export interface ForwardTrainOptions extends CommonOptions {
  /** Added to the variance before the square root. Finite and > 0. Default `1e-5`. */
  eps?: number;
  /** PyTorch convention: `running = (1 - momentum) * running + momentum * batch`. Default `0.1`. */
  momentum?: number;
  /** Running mean, `Float32Array(C)`, updated in place when given. */
  runningMean?: Float32Array;
  /** Running variance, `Float32Array(C)`, updated in place when given. */
  runningVar?: Float32Array;
  /**
   * `true` (default, PyTorch): the running variance takes the unbiased batch variance
   * `var * M / (M - 1)`. `false` (Keras, ONNX): it takes the biased one.
   */
  unbiased?: boolean;
  /** Destination for `y`, length of `x`; may be `x` itself (in place). */
  out?: Float32Array;
  /** Destination for the batch mean, `Float32Array(C)`. */
  saveMean?: Float32Array;
  /** Destination for `1 / sqrt(var + eps)` (biased variance), `Float32Array(C)`. */
  saveInvStd?: Float32Array;
}

/** Options of {@link forwardInference}. */
export interface ForwardInferenceOptions extends CommonOptions {
  /** Added to the running variance before the square root. Finite and > 0. Default `1e-5`. */
  eps?: number;
  /** Running mean, `Float32Array(C)`. Required. */
  runningMean: Float32Array;
  /** Running variance, `Float32Array(C)`. Required. */
  runningVar: Float32Array;
  /** Destination for `y`, length of `x`; may be `x` itself (in place). */
  out?: Float32Array;
}

/** Options of {@link backward}. */
export interface BackwardOptions extends CommonOptions {
  /** The batch mean saved by {@link forwardTrain}, `Float32Array(C)`. Required. */
  saveMean: Float32Array;
  /** The `1 / sqrt(var + eps)` saved by {@link forwardTrain}, `Float32Array(C)`. Required. */
  saveInvStd: Float32Array;
  /**
   * `true`: the statistics were constants (inference-mode backward, e.g. a frozen layer):
   * `dx = dy * gamma * invStd`. Default `false`.
   */
  useGlobalStats?: boolean;
  /** Destination for `dx`, length of `x`; may be `dy` itself (in place). */
  dx?: Float32Array;
  /** Destination for `dgamma`, `Float32Array(C)`. */
  dgamma?: Float32Array;
  /** Destination for `dbeta`, `Float32Array(C)`. */
  dbeta?: Float32Array;
}

/** Result of {@link forwardTrain}. */
export interface ForwardTrainResult {
  /** The normalised output (the `out` destination when one was given). */
  y: Float32Array;
  /** Per-channel batch mean. */
  saveMean: Float32Array;
  /** Per-channel `1 / sqrt(var + eps)`, biased variance. */
  saveInvStd: Float32Array;
}

/** Result of {@link backward}. */
export interface BackwardResult {
  /** Gradient with respect to `x`. */
  dx: Float32Array;
  /** Gradient with respect to `gamma` (computed even when `gamma` is absent). */
  dgamma: Float32Array;
  /** Gradient with respect to `beta` (computed even when `beta` is absent). */
  dbeta: Float32Array;
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
