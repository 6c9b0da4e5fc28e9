/**
 * Batch renormalisation (Ioffe 2017). In training,
 *
 *     y = gamma * (xhat * r + d) + beta,   r = clip(sigma_B / sigma, 1/rmax, rmax),
 *                                          d = clip((mu_B - mu) / sigma, -dmax, dmax)
 *
 * with sigma_B = sqrt(var_B + eps) the batch's, and mu, sigma = sqrt(runningVar + eps) the
 * running statistics before this batch's update. r and d are constants for backward, so this
 * is plain batch norm with gamma' = gamma * r and beta' = beta + gamma * d; backward with
 * gamma' gives the right dx, and since dy/dgamma = xhat * r + d,
 *
 *     dL/dgamma = r * sum(dy * xhat) + d * sum(dy) = r * dgamma' + d * dbeta.
 *
 * The running statistics are updated as in plain batch norm (mean and variance; the paper
 * averages sigma instead, which differs only in second order).
 */
import type { RenormClipping } from './options';

/** The per-channel corrections and the affine parameters that apply them. */
export interface RenormTerms {
  r: Float32Array;
  d: Float32Array;
  /** gamma * r (gamma = 1 when the layer has none). */
  gamma: Float32Array;
  /** beta + gamma * d (beta = 0 when the layer has none). */
  beta: Float32Array;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** r, d and the effective gamma and beta for a batch with mean `saveMean` and `1/sigma_B` `saveInvStd`. */
export function renormTerms(
  batch: { saveMean: Float32Array; saveInvStd: Float32Array },
  running: { mean: Float32Array; variance: Float32Array; eps: number },
  affine: { gamma: Float32Array | null; beta: Float32Array | null },
  clipping: RenormClipping,
): RenormTerms {
  const C = batch.saveMean.length;
  const terms = { r: new Float32Array(C), d: new Float32Array(C), gamma: new Float32Array(C), beta: new Float32Array(C) };
  for (let c = 0; c < C; c++) {
    const sigma = Math.sqrt(running.variance[c] + running.eps);
    const r = clamp(1 / (batch.saveInvStd[c] * sigma), 1 / clipping.rmax, clipping.rmax);
    const d = clamp((batch.saveMean[c] - running.mean[c]) / sigma, -clipping.dmax, clipping.dmax);
    const g = affine.gamma ? affine.gamma[c] : 1;
    terms.r[c] = r;
    terms.d[c] = d;
    terms.gamma[c] = g * r;
    terms.beta[c] = (affine.beta ? affine.beta[c] : 0) + g * d;
  }
  return terms;
}
