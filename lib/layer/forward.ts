/**
 * The layer's forward pass as steps (see kernel-calls.ts): training mode over the whole batch
 * or per ghost batch, with or without batch renormalisation, and eval mode, each with the
 * layer's activation and the call's residual fused in (SPEC section 7). It records what
 * backward needs.
 */
import type { Collective } from '../collective/collective';
import { tooFewOverReplicas } from '../collective/kernel-exchange';
import { rangeError } from '../errors';
import type { Activation, ForwardTrainOptions, ForwardTrainResult, Moments } from '../types';
import { geometry, sameMemory, view } from '../validate';
import { float32Array } from './checks';
import { call, inferenceCall, momentsCall, trainCall, type Steps } from './kernel-calls';
import type { RenormClipping } from './options';
import { renormTerms } from './renorm';
import { exchangedTrainCall, kernelExchangeFor, synchronizedMoments, type Synchronization } from './synchronized';

/** What the forward pass reads and updates on the layer. */
export interface ForwardState {
  readonly numFeatures: number;
  readonly axis: number;
  readonly eps: number;
  readonly momentum: number | null;
  readonly unbiased: boolean;
  readonly gamma: Float32Array | null;
  readonly beta: Float32Array | null;
  readonly runningMean: Float32Array | null;
  readonly runningVar: Float32Array | null;
  numBatchesTracked: number;
  readonly virtualBatchSize: number | null;
  readonly renorm: RenormClipping | null;
  readonly activation: Activation;
}

/** One normalised block of the input (the whole batch, or one ghost batch) and its statistics. */
export interface Segment {
  offset: number;
  length: number;
  shape: number[];
  saveMean: Float32Array;
  saveInvStd: Float32Array;
  /** The gamma the forward used (gamma * r under renorm); null means 1. A copy: see Saved.gamma. */
  gamma: Float32Array | null;
  /** Renorm's corrections, when it was on. */
  renorm: { r: Float32Array; d: Float32Array } | null;
  /** Where the ReLU passed, from forwardTrain (null without relu, and in eval mode: see Saved.y). */
  reluMask: Uint8Array | null;
}

/** What a forward call leaves for backward. */
export interface Saved {
  x: Float32Array;
  /** An eval-mode forward in place (`out` = `x`): `x` now holds `y`, so dL/dgamma cannot be had. */
  xOverwritten: boolean;
  /**
   * The layer's gamma when the forward ran, copied: backward differentiates what the forward
   * computed, though an optimizer, clipGamma or loadStateDict changed gamma in between (as
   * TensorFlow reads a variable's value at the op; PyTorch refuses such a backward).
   */
  gamma: Float32Array | null;
  /**
   * The output: a layer that reuses its arrays must not write over it while backward is
   * pending. In eval mode with relu, its positive entries are where the ReLU passed (as
   * PyTorch's ReLU saves its output for backward).
   */
  y: Float32Array;
  activation: Activation;
  /** Whether the forward added a residual (then backward can give its gradient). */
  residual: boolean;
  axis: number;
  /** Eval mode with running statistics: they were constants. */
  useGlobalStats: boolean;
  segments: Segment[];
  /** A synchronized forward (one segment): backward synchronizes through the same collective. */
  synchronized: Synchronization | null;
}

/**
 * Copies of gamma and beta as the forward is called, for its kernels: an async forward's kernel
 * runs later, and an optimizer step that overlaps it (it may: it is no layer method) then
 * changes neither its output nor what backward differentiates (see Saved.gamma).
 */
function parametersAtCall(state: ForwardState) {
  return { gamma: state.gamma?.slice() ?? null, beta: state.beta?.slice() ?? null };
}

/** Checks `x` and `shape` against the layer before any work, and returns the shape as numbers. */
export function checkInput(state: ForwardState, x: unknown, shape: unknown): number[] {
  const data = float32Array(x, 'x');
  const g = geometry(shape, state.axis, data.length);
  const dims = Array.from(shape as number[]);
  if (g.channels !== state.numFeatures) {
    throw rangeError('ERR_BATCHNORM_SHAPE_MISMATCH', `a shape with numFeatures = ${state.numFeatures} channels on axis ${state.axis}`, 'shape', `[${dims.join(', ')}]`);
  }
  return dims;
}

/** The ghost batches' shape, or the whole shape when there are none. */
function segmentShape(state: ForwardState, dims: number[]): number[] {
  const v = state.virtualBatchSize;
  if (v === null || dims[0] === 0) return dims; // an empty batch: forwardTrain reports it
  const axis = state.axis < 0 ? state.axis + dims.length : state.axis;
  if (axis === 0) {
    throw rangeError('ERR_BATCHNORM_INVALID_AXIS', 'a channel axis other than the leading (batch) axis with virtualBatchSize', 'opts.axis', String(state.axis));
  }
  if (dims[0] % v !== 0) {
    throw rangeError('ERR_BATCHNORM_SHAPE_MISMATCH', `a leading dimension divisible by virtualBatchSize ${v}`, 'shape[0]', String(dims[0]));
  }
  return [v, ...dims.slice(1)];
}

/** This batch's running-average factor: `momentum`, or 1/n for the cumulative average. */
function momentumFor(state: ForwardState): number {
  return state.momentum ?? 1 / (state.numBatchesTracked + 1);
}

/** The saveMean and saveInvStd that forwardTrain computes from `moments` (the same arithmetic). */
function savedStatistics(moments: Moments, eps: number) {
  return {
    saveMean: Float32Array.from(moments.mean),
    saveInvStd: Float32Array.from(moments.m2, (m2) => 1 / Math.sqrt(m2 / moments.count + eps)),
  };
}

/**
 * Training-mode forward (and eval mode without running statistics, where there are none to
 * update): batch statistics, running statistics updated when the layer has them. With a
 * collective, the batch is the concatenation of every replica's `x` (synchronized.ts).
 *
 * Ghost batches: the leading axis is the outermost, so each ghost batch is a contiguous block
 * of `x`. Each is normalised with its own statistics and updates the running statistics in
 * turn, as a loop over smaller batches would (Hoffer et al. 2017). Keras's virtual_batch_size
 * instead averages the ghost batches' statistics into one update per call (its own comment
 * calls that an approximation) and groups samples with a stride; we prefer the exact
 * sequential form, whose running statistics match training at the ghost batch size.
 */
export function* trainForward(state: ForwardState, x: Float32Array, dims: number[], y: Float32Array, residual: Float32Array | null, collective: Collective | null): Steps<{ y: Float32Array; saved: Saved }> {
  const segShape = segmentShape(state, dims);
  const count = dims[0] === 0 ? 1 : dims[0] / segShape[0];
  const segLength = x.length / count;
  const { runningMean, runningVar, activation } = state;
  const tracking = runningMean !== null && runningVar !== null;
  const { gamma: gammaAtForward, beta: betaAtForward } = parametersAtCall(state);
  const segments: Segment[] = [];
  let synchronized: Synchronization | null = null; // with a collective there is one segment
  // Renorm needs the moments before it normalises: then the split path (synchronized.ts).
  const exchange = collective && !(state.renorm && tracking) ? kernelExchangeFor(collective, state.numFeatures) : null;
  for (let offset = 0; segments.length < count; offset += segLength) {
    const xs = view(x, offset, offset + segLength);
    const ys = view(y, offset, offset + segLength);
    let gamma: Float32Array | undefined = gammaAtForward ?? undefined;
    let beta: Float32Array | undefined = betaAtForward ?? undefined;
    let renorm: Segment['renorm'] = null;
    const moments = collective && !exchange ? yield* synchronizedMoments(collective, xs, segShape, state.axis, state.numFeatures) : undefined;
    if (collective && moments) {
      // Refused here, as the kernels' exchange refuses it, rather than as forwardTrain's moments.
      if (moments.count < 2) throw tooFewOverReplicas(moments.count, collective.size);
      synchronized = { collective, count: moments.count, exchange: null };
    }
    if (state.renorm && runningMean && runningVar) {
      // r and d need the batch statistics before the normalisation: a moments pass first (it
      // writes nothing, so `out` may still be the residual), unless the synchronized moments
      // are already in.
      const batch = savedStatistics(moments ?? (yield* call(momentsCall(xs, segShape, { axis: state.axis }))), state.eps);
      const terms = renormTerms(batch, { mean: runningMean, variance: runningVar, eps: state.eps }, { gamma: gammaAtForward, beta: betaAtForward }, state.renorm);
      ({ gamma, beta } = terms);
      renorm = { r: terms.r, d: terms.d };
    }
    // The options as one literal (see kernel-calls.ts: no spreads in a step's hot path).
    const opts: ForwardTrainOptions = {
      axis: state.axis,
      eps: state.eps,
      unbiased: state.unbiased,
      runningMean: tracking ? runningMean : undefined,
      runningVar: tracking ? runningVar : undefined,
      momentum: tracking ? momentumFor(state) : undefined,
      activation,
      residual: residual && view(residual, offset, offset + segLength),
      gamma,
      beta,
      out: ys,
      moments,
    };
    let stats: ForwardTrainResult;
    if (collective && exchange) {
      const shared = yield* call(exchangedTrainCall(exchange, xs, segShape, opts));
      stats = shared.result;
      synchronized = { collective, count: shared.count, exchange };
    } else {
      stats = yield* call(trainCall(xs, segShape, opts));
    }
    if (tracking) state.numBatchesTracked++;
    const reluMask = stats.reluMask ?? null;
    segments.push({ offset, length: segLength, shape: segShape, saveMean: stats.saveMean, saveInvStd: stats.saveInvStd, gamma: gamma ?? null, renorm, reluMask });
  }
  return { y, saved: { x, xOverwritten: false, gamma: gammaAtForward, y, axis: state.axis, useGlobalStats: false, segments, synchronized, activation, residual: residual !== null } };
}

/** Eval-mode forward with the running statistics, which backward then treats as constants. */
export function* evalForward(state: ForwardState, running: { mean: Float32Array; variance: Float32Array }, x: Float32Array, dims: number[], out: Float32Array, residual: Float32Array | null): Steps<{ y: Float32Array; saved: Saved }> {
  const { eps, activation } = state;
  const { gamma: gammaAtForward, beta: betaAtForward } = parametersAtCall(state);
  // The statistics too, as the kernel reads them and backward takes them as constants.
  const [mean, variance] = [running.mean.slice(), running.variance.slice()];
  const y = yield* call(
    inferenceCall(x, dims, {
      axis: state.axis,
      gamma: gammaAtForward ?? undefined,
      beta: betaAtForward ?? undefined,
      activation,
      residual: residual ?? undefined,
      eps,
      runningMean: mean,
      runningVar: variance,
      out,
    }),
  );
  const saveInvStd = variance.map((v) => 1 / Math.sqrt(v + eps));
  const segment = { offset: 0, length: x.length, shape: dims, saveMean: mean, saveInvStd, gamma: gammaAtForward, renorm: null, reluMask: null };
  return { y, saved: { x, xOverwritten: sameMemory(x, y), gamma: gammaAtForward, y, axis: state.axis, useGlobalStats: true, segments: [segment], synchronized: null, activation, residual: residual !== null } };
}
