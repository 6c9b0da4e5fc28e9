/**
 * Validated calls ("plans"): what both backends receive. A plan exists only once every
 * argument passed SPEC section 4, and its output arrays are already allocated or given.
 */
import type { ExchangeViews } from './collective/kernel-exchange';
import type { BackwardResult, ForwardTrainResult } from './types';

/** The (outer, C, inner) model of SPEC section 2; M = outer * inner values per channel. */
export interface Geometry {
  outer: number;
  channels: number;
  inner: number;
}

/** Per-channel moments over `count` values per channel (SPEC section 8). */
export interface GivenMoments {
  count: number;
  mean: Float64Array;
  m2: Float64Array;
}

/** Per-channel sum(dy) and sum(dy * (x - saveMean)) (SPEC section 8). */
export interface GivenSums {
  sumDy: Float64Array;
  sumDyXmu: Float64Array;
}

export interface TrainPlan {
  g: Geometry;
  x: Float32Array;
  y: Float32Array;
  gamma: Float32Array | null;
  beta: Float32Array | null;
  eps: number;
  momentum: number;
  runningMean: Float32Array | null;
  runningVar: Float32Array | null;
  unbiased: boolean;
  saveMean: Float32Array;
  saveInvStd: Float32Array;
  /** Normalise with these (merged) moments instead of x's own. */
  moments: GivenMoments | null;
  /** SPEC section 7: y = relu(pre) with relu; pre = affine (+ residual). */
  residual: Float32Array | null;
  relu: boolean;
  /** Allocated or given exactly when relu. */
  reluMask: Uint8Array | null;
  /** Synchronized inside the native kernels (lib/collective/kernel-exchange.ts): the moments are every replica's. */
  exchange?: ExchangeViews;
}

/** batchMoments: x's per-channel mean and M2 into `mean` and `m2`. */
export interface MomentsPlan {
  g: Geometry;
  x: Float32Array;
  mean: Float64Array;
  m2: Float64Array;
}

export interface InferencePlan {
  g: Geometry;
  x: Float32Array;
  y: Float32Array;
  gamma: Float32Array | null;
  beta: Float32Array | null;
  eps: number;
  runningMean: Float32Array;
  runningVar: Float32Array;
  residual: Float32Array | null;
  relu: boolean;
}

export interface BackwardPlan {
  g: Geometry;
  dy: Float32Array;
  x: Float32Array;
  dx: Float32Array;
  gamma: Float32Array | null;
  saveMean: Float32Array;
  saveInvStd: Float32Array;
  useGlobalStats: boolean;
  dgamma: Float32Array;
  dbeta: Float32Array;
  /** The whole batch's sums over `count` values per channel, for dx. */
  sums: (GivenSums & { count: number }) | null;
  /** This batch's own sums (only with `sums`): dgamma and dbeta from them, no reduce pass. */
  localSums: GivenSums | null;
  /** Present exactly with relu: the gradient is g = mask bit ? dy : 0. */
  reluMask: Uint8Array | null;
  /** Receives g; may be dy itself. */
  dresidual: Float32Array | null;
  /** Synchronized inside the native kernels: dx from every replica's sums over `count` values per channel. */
  exchange?: { views: ExchangeViews; count: number };
}

/** backwardSums: this batch's gradient sums into `sumDy` and `sumDyXmu`. */
export interface SumsPlan {
  g: Geometry;
  dy: Float32Array;
  x: Float32Array;
  saveMean: Float32Array;
  sumDy: Float64Array;
  sumDyXmu: Float64Array;
  /** SPEC section 7: the sums of g = mask bit ? dy : 0 (null: of dy). */
  reluMask: Uint8Array | null;
}

/** What a backend implements; async forms resolve once the outputs are written. */
export interface Backend {
  forwardTrain(p: TrainPlan): void;
  forwardInference(p: InferencePlan): void;
  backward(p: BackwardPlan): void;
  batchMoments(p: MomentsPlan): void;
  backwardSums(p: SumsPlan): void;
  forwardTrainAsync(p: TrainPlan): Promise<void>;
  forwardInferenceAsync(p: InferencePlan): Promise<void>;
  backwardAsync(p: BackwardPlan): Promise<void>;
  batchMomentsAsync(p: MomentsPlan): Promise<void>;
  backwardSumsAsync(p: SumsPlan): Promise<void>;
}

/** What forwardTrain returns for a plan it ran. */
export function trainResult(p: TrainPlan): ForwardTrainResult {
  const result: ForwardTrainResult = { y: p.y, saveMean: p.saveMean, saveInvStd: p.saveInvStd };
  if (p.reluMask) result.reluMask = p.reluMask;
  return result;
}

/** What backward returns for a plan it ran. */
export function backwardResult(p: BackwardPlan): BackwardResult {
  const result: BackwardResult = { dx: p.dx, dgamma: p.dgamma, dbeta: p.dbeta };
  if (p.dresidual) result.dresidual = p.dresidual;
  return result;
}
