/**
 * The pure TypeScript backend: the same math as the native kernels, accumulated in float64
 * (JavaScript numbers). Loops walk memory in order, (o, c, i), with per-channel accumulators,
 * so every layout streams. Each pass is written out as its own triple loop with its arrays in
 * locals: a callback per run cost a call per element on channels-last data (inner = 1), which
 * made that layout 3-4x slower than the plain loops.
 */
import type { Backend, BackwardPlan, Geometry, GivenSums, InferencePlan, MomentsPlan, SumsPlan, TrainPlan } from './plan';

/** No elements: no pass may loop, however large the other dimensions ([2^40, 0, 2^40]). */
const isEmpty = (g: Geometry) => g.outer * g.channels * g.inner === 0;
/**
 * The element count, from the validated geometry: the arrays' own `length` (or any method)
 * may be a subclass's getter that throws or lies (only the intrinsic accessors are trusted).
 */
const sizeOf = (g: Geometry) => (isEmpty(g) ? 0 : g.outer * g.channels * g.inner);

/**
 * Per-channel mean and M2 (sum of squared deviations). One pass of sums shifted by the
 * channel's first value K: M2 = S2 - S1^2 / M with S1 = sum(x - K), S2 = sum((x - K)^2). In
 * float64 the shift keeps the cancellation harmless even when the mean is 10^4 standard
 * deviations. Needs M >= 1.
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
  const m2 = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    mean[c] = shift[c] + s1[c] / M;
    const v = s2[c] - (s1[c] * s1[c]) / M;
    m2[c] = v < 0 ? 0 : v; // rounding noise only; NaN passes
    if (!Number.isFinite(mean[c])) mean[c] = plainMean(x, g, c); // Inf/NaN in the data
  }
  return { mean, m2 };
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

/** SPEC section 7's epilogue of a forward pass. */
interface Epilogue {
  residual: Float32Array | null;
  relu: boolean;
  reluMask?: Uint8Array | null;
}

/**
 * affine() fused with SPEC section 7's epilogue: pre = (x - mean) * scale + shift + residual,
 * y = relu(pre) (v > 0 ? v : 0, NaN kept) or pre, and the mask bit of the stored float y > 0.
 * Element i is read before it is written, so y may be the residual itself.
 */
function affineFused(x: Float32Array, y: Float32Array, g: Geometry, mean: ArrayLike<number>, scale: ArrayLike<number>, shift: ArrayLike<number>, e: Epilogue) {
  if (isEmpty(g)) return;
  const { outer, channels: C, inner } = g;
  const { residual, relu } = e;
  const mask = e.reluMask ?? null;
  for (let b = 0, bytes = mask ? Math.ceil(sizeOf(g) / 8) : 0; b < bytes; b++) mask![b] = 0;
  for (let o = 0, i = 0; o < outer; o++) {
    for (let c = 0; c < C; c++) {
      const m = mean[c];
      const s = scale[c];
      const b = shift[c];
      for (const end = i + inner; i < end; i++) {
        let v = (x[i] - m) * s + b;
        if (residual) v += residual[i];
        if (relu && !(v > 0) && v === v) v = 0;
        y[i] = v;
        if (mask && y[i] > 0) mask[i >> 3] |= 1 << (i & 7);
      }
    }
  }
}

/** The elementwise pass of a forward: plain, or fused with the plan's epilogue. */
function normalize(x: Float32Array, y: Float32Array, g: Geometry, mean: ArrayLike<number>, scale: ArrayLike<number>, shift: ArrayLike<number>, e: Epilogue) {
  if (e.residual || e.relu) affineFused(x, y, g, mean, scale, shift, e);
  else affine(x, y, g, mean, scale, shift);
}

/**
 * The gradient the ordinary backward runs on (SPEC section 7): g = mask bit ? dy : 0 with a
 * ReLU mask, else dy; written to dresidual when that is wanted.
 */
function incomingGradient(p: Pick<BackwardPlan, 'g' | 'dy' | 'reluMask' | 'dresidual'>): Float32Array {
  const { dy, reluMask: mask, dresidual } = p;
  const n = sizeOf(p.g);
  if (!mask) {
    if (dresidual && dresidual !== dy) for (let i = 0; i < n; i++) dresidual[i] = dy[i];
    return dy;
  }
  const g = dresidual ?? new Float32Array(n);
  for (let i = 0; i < n; i++) g[i] = (mask[i >> 3] >> (i & 7)) & 1 ? dy[i] : 0;
  return g;
}

const gammaAt = (gamma: Float32Array | null, c: number) => (gamma ? gamma[c] : 1);
const betaAt = (beta: Float32Array | null, c: number) => (beta ? beta[c] : 0);

/** Normalises with the given moments, else x's own; with given moments x may be empty. */
export function forwardTrain(p: TrainPlan): void {
  const { g } = p;
  const C = g.channels;
  if (!p.moments && (C === 0 || g.outer * g.inner === 0)) return;
  const { mean, m2 } = p.moments ?? moments(p.x, g);
  const M = p.moments ? p.moments.count : g.outer * g.inner;
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const variance = m2[c] / M;
    const invStd = 1 / Math.sqrt(variance + p.eps);
    p.saveMean[c] = mean[c];
    p.saveInvStd[c] = invStd;
    if (p.runningMean) p.runningMean[c] = (1 - p.momentum) * p.runningMean[c] + p.momentum * mean[c];
    if (p.runningVar) {
      const batchVar = p.unbiased ? (variance * M) / (M - 1) : variance;
      p.runningVar[c] = (1 - p.momentum) * p.runningVar[c] + p.momentum * batchVar;
    }
    scale[c] = gammaAt(p.gamma, c) * invStd;
    shift[c] = betaAt(p.beta, c);
  }
  normalize(p.x, p.y, g, mean, scale, shift, p);
}

/** x's per-channel mean and M2; zeros for an empty batch. */
export function batchMoments(p: MomentsPlan): void {
  const { g } = p;
  if (isEmpty(g)) {
    p.mean.fill(0);
    p.m2.fill(0);
    return;
  }
  const { mean, m2 } = moments(p.x, g);
  p.mean.set(mean);
  p.m2.set(m2);
}

export function forwardInference(p: InferencePlan): void {
  const C = p.g.channels;
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    scale[c] = gammaAt(p.gamma, c) / Math.sqrt(p.runningVar[c] + p.eps);
    shift[c] = betaAt(p.beta, c);
  }
  normalize(p.x, p.y, p.g, p.runningMean, scale, shift, p);
}

/** sum(dy) and sum(dy * (x - saveMean)) per channel, into `out`. */
function gradSums(dy: Float32Array, x: Float32Array, g: Geometry, saveMean: Float32Array, out: GivenSums): void {
  const { outer, channels: C, inner } = g;
  const { sumDy, sumDyXmu } = out;
  sumDy.fill(0);
  sumDyXmu.fill(0);
  if (isEmpty(g)) return;
  for (let o = 0, i = 0; o < outer; o++) {
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
      sumDyXmu[c] += b;
    }
  }
}

export function backwardSums(p: SumsPlan): void {
  gradSums(incomingGradient({ ...p, dresidual: null }), p.x, p.g, p.saveMean, p);
}

/**
 * dbeta = sum(dy), dgamma = sum(dy * xhat) with xhat = (x - mean) * invStd, and
 *   dx = g invStd / M * (M dy - dbeta - xhat dgamma)        (batch statistics)
 *   dx = g invStd dy                                         (useGlobalStats)
 * Synchronized (p.sums): dx takes the whole batch's sums and count in place of this batch's,
 * and dgamma, dbeta stay this batch's (from p.localSums when given, else reduced here).
 * dy is the incoming gradient: masked by the ReLU, when there is one (SPEC section 7).
 */
export function backward(p: BackwardPlan): void {
  const { g, x, dx, saveMean } = p;
  const dy = incomingGradient(p);
  const { outer, channels: C, inner } = g;
  let own = p.localSums;
  if (!own) {
    own = { sumDy: new Float64Array(C), sumDyXmu: new Float64Array(C) };
    gradSums(dy, x, g, saveMean, own);
  }
  const total = p.sums ?? own;
  const M = p.sums ? p.sums.count : outer * inner;
  const kDy = new Float64Array(C);
  const kXc = new Float64Array(C);
  const kConst = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const invStd = p.saveInvStd[c];
    const gInvStd = gammaAt(p.gamma, c) * invStd;
    p.dbeta[c] = own.sumDy[c];
    p.dgamma[c] = own.sumDyXmu[c] * invStd;
    kDy[c] = gInvStd;
    if (!p.useGlobalStats) {
      const dgammaTotal = total.sumDyXmu[c] * invStd;
      kXc[c] = (-gInvStd * invStd * dgammaTotal) / M;
      kConst[c] = (-gInvStd * total.sumDy[c]) / M;
    }
  }
  if (isEmpty(g)) return;
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
  batchMoments,
  backwardSums,
  forwardTrainAsync: async (p) => forwardTrain(p),
  forwardInferenceAsync: async (p) => forwardInference(p),
  backwardAsync: async (p) => backward(p),
  batchMomentsAsync: async (p) => batchMoments(p),
  backwardSumsAsync: async (p) => backwardSums(p),
};
