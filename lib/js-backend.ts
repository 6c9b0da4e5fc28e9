/**
 * The pure TypeScript backend: the same math as the native kernels, accumulated in float64
 * (JavaScript numbers). Loops walk memory in order, (o, c, i), with per-channel accumulators,
 * so every layout streams. Each pass is written out as its own triple loop with its arrays in
 * locals: a callback per run cost a call per element on channels-last data (inner = 1), which
 * made that layout 3-4x slower than the plain loops.
 */
import type { Backend, BackwardPlan, Geometry, InferencePlan, TrainPlan } from './plan';

/** No elements: no pass may loop, however large the other dimensions ([2^40, 0, 2^40]). */
const isEmpty = (g: Geometry) => g.outer * g.channels * g.inner === 0;

/**
 * Per-channel mean and biased variance. One pass of sums shifted by the channel's first value
 * K: var = (S2 - S1^2 / M) / M with S1 = sum(x - K), S2 = sum((x - K)^2). In float64 the shift
 * keeps the cancellation harmless even when the mean is 10^4 standard deviations.
 */
function moments(x: Float32Array, g: Geometry) {
  const { outer, channels: C, inner } = g;
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) shift[c] = x[c * inner];
  const s1 = new Float64Array(C);
  const s2 = new Float64Array(C);
  for (let o = 0, i = 0; o < outer; o++) {
    for (let c = 0; c < C; c++) {
      const k = shift[c];
      let a = 0;
      let b = 0;
      for (const end = i + inner; i < end; i++) {
        const d = x[i] - k;
        a += d;
        b += d * d;
      }
      s1[c] += a;
      s2[c] += b;
    }
  }
  const M = outer * inner;
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const d = s1[c] / M;
    mean[c] = shift[c] + d;
    const v = s2[c] / M - d * d;
    variance[c] = v < 0 ? 0 : v; // rounding noise only; NaN passes
    if (!Number.isFinite(mean[c])) mean[c] = plainMean(x, g, c); // Inf/NaN in the data
  }
  return { mean, variance };
}

/** The IEEE mean of one channel, for data holding Inf or NaN (where shifting is meaningless). */
function plainMean(x: Float32Array, g: Geometry, channel: number): number {
  const { outer, channels: C, inner } = g;
  let sum = 0;
  for (let o = 0; o < outer; o++) {
    for (let i = (o * C + channel) * inner, end = i + inner; i < end; i++) sum += x[i];
  }
  return sum / (outer * inner);
}

/** y = (x - mean) * scale + shift, per channel. */
function affine(x: Float32Array, y: Float32Array, g: Geometry, mean: ArrayLike<number>, scale: ArrayLike<number>, shift: ArrayLike<number>) {
  if (isEmpty(g)) return;
  const { outer, channels: C, inner } = g;
  for (let o = 0, i = 0; o < outer; o++) {
    for (let c = 0; c < C; c++) {
      const m = mean[c];
      const s = scale[c];
      const b = shift[c];
      for (const end = i + inner; i < end; i++) y[i] = (x[i] - m) * s + b;
    }
  }
}

const gammaAt = (gamma: Float32Array | null, c: number) => (gamma ? gamma[c] : 1);
const betaAt = (beta: Float32Array | null, c: number) => (beta ? beta[c] : 0);

export function forwardTrain(p: TrainPlan): void {
  const { g } = p;
  const C = g.channels;
  if (C === 0 || g.outer * g.inner === 0) return;
  const { mean, variance } = moments(p.x, g);
  const M = g.outer * g.inner;
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const invStd = 1 / Math.sqrt(variance[c] + p.eps);
    p.saveMean[c] = mean[c];
    p.saveInvStd[c] = invStd;
    if (p.runningMean) p.runningMean[c] = (1 - p.momentum) * p.runningMean[c] + p.momentum * mean[c];
    if (p.runningVar) {
      const batchVar = p.unbiased ? (variance[c] * M) / (M - 1) : variance[c];
      p.runningVar[c] = (1 - p.momentum) * p.runningVar[c] + p.momentum * batchVar;
    }
    scale[c] = gammaAt(p.gamma, c) * invStd;
    shift[c] = betaAt(p.beta, c);
  }
  affine(p.x, p.y, g, mean, scale, shift);
}

export function forwardInference(p: InferencePlan): void {
  const C = p.g.channels;
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    scale[c] = gammaAt(p.gamma, c) / Math.sqrt(p.runningVar[c] + p.eps);
    shift[c] = betaAt(p.beta, c);
  }
  affine(p.x, p.y, p.g, p.runningMean, scale, shift);
}

/**
 * dbeta = sum(dy), dgamma = sum(dy * xhat) with xhat = (x - mean) * invStd, and
 *   dx = g invStd / M * (M dy - dbeta - xhat dgamma)        (batch statistics)
 *   dx = g invStd dy                                         (useGlobalStats)
 */
export function backward(p: BackwardPlan): void {
  const { g, dy, x, dx, saveMean } = p;
  const { outer, channels: C, inner } = g;
  const M = outer * inner;
  const sumDy = new Float64Array(C);
  const sumDyXc = new Float64Array(C);
  const empty = isEmpty(g);
  for (let o = 0, i = 0; !empty && o < outer; o++) {
    for (let c = 0; c < C; c++) {
      const m = saveMean[c];
      let a = 0;
      let b = 0;
      for (const end = i + inner; i < end; i++) {
        const d = dy[i];
        a += d;
        b += d * (x[i] - m);
      }
      sumDy[c] += a;
      sumDyXc[c] += b;
    }
  }
  const kDy = new Float64Array(C);
  const kXc = new Float64Array(C);
  const kConst = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const invStd = p.saveInvStd[c];
    const gInvStd = gammaAt(p.gamma, c) * invStd;
    const dgamma = sumDyXc[c] * invStd;
    p.dbeta[c] = sumDy[c];
    p.dgamma[c] = dgamma;
    kDy[c] = gInvStd;
    if (!p.useGlobalStats) {
      kXc[c] = (-gInvStd * invStd * dgamma) / M;
      kConst[c] = (-gInvStd * sumDy[c]) / M;
    }
  }
  if (empty) return;
  for (let o = 0, i = 0; o < outer; o++) {
    for (let c = 0; c < C; c++) {
      const a = kDy[c];
      if (p.useGlobalStats) {
        for (const end = i + inner; i < end; i++) dx[i] = dy[i] * a;
        continue;
      }
      const m = saveMean[c];
      const b = kXc[c];
      const k = kConst[c];
      for (const end = i + inner; i < end; i++) dx[i] = dy[i] * a + (x[i] - m) * b + k;
    }
  }
}

/** The JavaScript backend; its async forms compute on the calling thread. */
export const jsBackend: Backend = {
  forwardTrain,
  forwardInference,
  backward,
  forwardTrainAsync: async (p) => forwardTrain(p),
  forwardInferenceAsync: async (p) => forwardInference(p),
  backwardAsync: async (p) => backward(p),
};
