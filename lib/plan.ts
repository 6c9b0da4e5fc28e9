/**
 * Validated calls ("plans"): what both backends receive. A plan exists only once every
 * argument passed SPEC section 4, and its output arrays are already allocated or given.
 */

/** The (outer, C, inner) model of SPEC section 2; M = outer * inner values per channel. */
export interface Geometry {
  outer: number;
  channels: number;
  inner: number;
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
}

/** What a backend implements; async forms resolve once the outputs are written. */
export interface Backend {
  forwardTrain(p: TrainPlan): void;
  forwardInference(p: InferencePlan): void;
  backward(p: BackwardPlan): void;
  forwardTrainAsync(p: TrainPlan): Promise<void>;
  forwardInferenceAsync(p: InferencePlan): Promise<void>;
  backwardAsync(p: BackwardPlan): Promise<void>;
}
