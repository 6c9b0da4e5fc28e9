/**
 * The layer's backward pass as steps (see kernel-calls.ts): one kernel call per segment the
 * forward normalised, each with that segment's saved statistics and ReLU mask (synchronized
 * across replicas when the forward was), then PyTorch `.grad` semantics: gradients are added to
 * the layer's `gradGamma` / `gradBeta`.
 */
import { view } from '../validate';
import type { Saved, Segment } from './forward';
import { reluMaskOf } from './fusion';
import { backwardCall, call, type Steps } from './kernel-calls';
import { synchronizedBackward } from './synchronized';

/** The layer's parameters and gradients as backward sees them. */
export interface BackwardState {
  readonly gradGamma: Float32Array | null;
  readonly gradBeta: Float32Array | null;
  readonly l1: number;
}

/** Where the ReLU passed in a segment: forwardTrain's mask, or (eval mode) the output's sign. */
function segmentMask(saved: Saved, s: Segment): Uint8Array | undefined {
  if (saved.activation !== 'relu') return undefined;
  return s.reluMask ?? reluMaskOf(view(saved.y, s.offset, s.offset + s.length));
}

/**
 * Adds one segment's dL/dgamma and dL/dbeta to the layer's gradients. Under renorm the kernel's
 * dgamma is sum(dy * xhat), and dL/dgamma = r * that + d * sum(dy); without it, dgamma as it is.
 */
function addGradients({ gradGamma, gradBeta }: BackwardState, segment: Segment, dgamma: Float32Array, dbeta: Float32Array): void {
  const renorm = segment.renorm;
  if (gradGamma && renorm) {
    for (let c = 0; c < dgamma.length; c++) gradGamma[c] += renorm.r[c] * dgamma[c] + renorm.d[c] * dbeta[c];
  } else if (gradGamma) {
    for (let c = 0; c < dgamma.length; c++) gradGamma[c] += dgamma[c];
  }
  if (gradBeta) {
    for (let c = 0; c < dbeta.length; c++) gradBeta[c] += dbeta[c];
  }
}

/**
 * dx for `dy`, written into `dx`, and dL/dresidual into `dresidual` when given; adds dL/dgamma
 * (plus the L1 term) and dL/dbeta to the layer's gradients. The layer has checked dy, dx and
 * dresidual against the saved forward.
 */
export function* layerBackward(state: BackwardState, saved: Saved, dy: Float32Array, dx: Float32Array, dresidual: Float32Array | null): Steps<Float32Array> {
  const { x, axis, useGlobalStats, activation } = saved;
  const grads = [];
  for (const s of saved.segments) {
    const end = s.offset + s.length;
    const opts = {
      axis,
      gamma: s.gamma ?? undefined,
      saveMean: s.saveMean,
      saveInvStd: s.saveInvStd,
      useGlobalStats,
      activation,
      reluMask: segmentMask(saved, s),
      dresidual: dresidual && view(dresidual, s.offset, end),
      dx: view(dx, s.offset, end),
    };
    const [dys, xs] = [view(dy, s.offset, end), view(x, s.offset, end)];
    const result = saved.synchronized
      ? yield* synchronizedBackward(saved.synchronized, dys, xs, s.shape, opts)
      : yield* call(backwardCall(dys, xs, s.shape, opts));
    grads.push({ segment: s, ...result });
  }
  for (const { segment, dgamma, dbeta } of grads) addGradients(state, segment, dgamma, dbeta);
  const { gradGamma, l1 } = state;
  const gamma = saved.gamma; // the forward's: L1's sign(gamma) is part of the loss it computed
  if (gradGamma && gamma && l1 > 0) {
    for (let c = 0; c < gamma.length; c++) gradGamma[c] += l1 * Math.sign(gamma[c]);
  }
  return dx;
}
