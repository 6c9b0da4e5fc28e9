/**
 * Stability across batch sizes: ghost batch normalisation (statistics per sub-batch of the
 * leading axis) and batch renormalisation (Ioffe 2017), each against a float64 reference and
 * by finite differences.
 */
import { describe, expect, test } from 'vitest';

import { BatchNorm, BatchNormRangeError, type BatchNormOptions, type RenormClipping } from '../lib/index';
import { expectGradient, numericGradient, weightedSum } from './helpers/gradients';
import { rng } from './helpers/random';
import { expectElementwise, expectRelative, expectSameBits, geometryOf, refForwardTrain, type Geometry } from './helpers/reference';

interface RefState {
  gamma: Float32Array;
  beta: Float32Array;
  runningMean: Float64Array;
  runningVar: Float64Array;
}

/**
 * The layer's training forward in float64: per ghost batch (contiguous along the leading
 * axis), y = gamma * (xhat * r + d) + beta with renorm's r and d (r = 1, d = 0 without), and
 * the running statistics updated after each ghost batch with the unbiased variance.
 */
function refLayerTrain(x: Float32Array, shape: number[], s: RefState, o: { virtualBatchSize?: number; renorm?: RenormClipping; momentum?: number; eps?: number }) {
  const eps = o.eps ?? 1e-5;
  const momentum = o.momentum ?? 0.1;
  const parts = o.virtualBatchSize ? shape[0] / o.virtualBatchSize : 1;
  const subShape = [shape[0] / parts, ...shape.slice(1)];
  const g: Geometry = geometryOf(subShape, 1);
  const M = g.outer * g.inner;
  const len = x.length / parts;
  const y = new Float64Array(x.length);
  const rs: Float64Array[] = [];
  const ds: Float64Array[] = [];
  for (let p = 0; p < parts; p++) {
    const xs = x.subarray(p * len, (p + 1) * len);
    const ref = refForwardTrain(xs, g);
    const r = new Float64Array(g.channels).fill(1);
    const d = new Float64Array(g.channels);
    for (let c = 0; c < g.channels; c++) {
      if (!o.renorm) continue;
      const sigma = Math.sqrt(s.runningVar[c] + eps);
      const clip = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
      r[c] = clip(Math.sqrt(ref.variance[c] + eps) / sigma, 1 / o.renorm.rmax, o.renorm.rmax);
      d[c] = clip((ref.mean[c] - s.runningMean[c]) / sigma, -o.renorm.dmax, o.renorm.dmax);
    }
    ref.y.forEach((xhat, k) => {
      const c = Math.floor(k / g.inner) % g.channels;
      y[p * len + k] = s.gamma[c] * (xhat * r[c] + d[c]) + s.beta[c];
    });
    for (let c = 0; c < g.channels; c++) {
      s.runningMean[c] = (1 - momentum) * s.runningMean[c] + momentum * ref.mean[c];
      s.runningVar[c] = (1 - momentum) * s.runningVar[c] + (momentum * ref.variance[c] * M) / (M - 1);
    }
    rs.push(r);
    ds.push(d);
  }
  return { y, r: rs, d: ds };
}

const shape = [12, 3, 4];
const n = 144;
const r = rng(2017);
const x = Float32Array.from(r.normals(n), (v, k) => v * (1 + (k % 5)) + Math.floor(k / 48)); // sub-batches differ
const w = r.normals(n);
const gamma = r.normals(3, 1, 0.3);
const beta = r.normals(3, 0, 0.3);
const running = { mean: Float32Array.from([0.5, -0.3, 0.1]), variance: Float32Array.from([2, 0.5, 1.5]) };

/** A layer with the shared parameters and the given running statistics. */
function makeLayer(options: BatchNormOptions, stats = running) {
  const bn = new BatchNorm(3, options);
  bn.loadStateDict({ weight: gamma, bias: beta, running_mean: stats.mean, running_var: stats.variance, num_batches_tracked: 0 });
  return bn;
}

/** Checks a configuration against the float64 reference: y and the running statistics. */
function checkAgainstReference(options: BatchNormOptions & { virtualBatchSize?: number; renorm?: RenormClipping }) {
  const bn = makeLayer(options);
  const s = { gamma, beta, runningMean: Float64Array.from(running.mean), runningVar: Float64Array.from(running.variance) };
  const ref = refLayerTrain(x, shape, s, { virtualBatchSize: options.virtualBatchSize, renorm: options.renorm ?? undefined });
  expectElementwise(bn.forward(x, shape), ref.y, 'y');
  expectRelative(bn.runningMean!, s.runningMean, 'runningMean');
  expectRelative(bn.runningVar!, s.runningVar, 'runningVar');
  return ref;
}

/** Finite differences of sum(w * forward(x)) against backward, for x, gamma and beta. */
function checkGradients(options: BatchNormOptions, stats = running) {
  const lossWith = (xv: Float32Array, g: Float32Array, b: Float32Array) => {
    const bn = makeLayer(options, stats);
    bn.gamma!.set(g);
    bn.beta!.set(b);
    return weightedSum(bn.forward(xv, shape), w);
  };
  const bn = makeLayer(options, stats);
  bn.forward(x, shape);
  const dx = bn.backward(w);
  expectGradient(dx, numericGradient((v) => lossWith(v, gamma, beta), x), 'dx');
  expectGradient(bn.gradGamma!, numericGradient((g) => lossWith(x, g, beta), gamma), 'dgamma');
  expectGradient(bn.gradBeta!, numericGradient((b) => lossWith(x, gamma, b), beta), 'dbeta');
}

describe('ghost batch normalisation', () => {
  test('matches the float64 reference per ghost batch, running statistics updated per ghost batch', () => {
    checkAgainstReference({ virtualBatchSize: 4 });
  });

  test('equals feeding the ghost batches one by one', () => {
    const ghost = makeLayer({ virtualBatchSize: 3 });
    const plain = makeLayer({});
    const y = ghost.forward(x, shape);
    for (let p = 0; p < 4; p++) {
      const part = plain.forward(x.subarray(p * 36, (p + 1) * 36), [3, 3, 4]);
      expectSameBits(y.subarray(p * 36, (p + 1) * 36), part, `ghost batch ${p}`);
    }
    expectSameBits(ghost.runningVar!, plain.runningVar!, 'runningVar');
    expect(ghost.numBatchesTracked).toBe(4);
  });

  test('backward matches finite differences', () => {
    checkGradients({ virtualBatchSize: 4 });
  });

  test('a batch the ghost size does not divide, or a ghost batch on the channel axis, is a RangeError', () => {
    const bn = makeLayer({ virtualBatchSize: 5 });
    expect(() => bn.forward(x, shape)).toThrow(BatchNormRangeError);
    expect(() => bn.forward(x, shape)).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_SHAPE_MISMATCH', message: expect.stringContaining('virtualBatchSize 5') }));
    const onAxis0 = new BatchNorm(12, { axis: 0, virtualBatchSize: 2 });
    expect(() => onAxis0.forward(x, shape)).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_AXIS' }));
    const single = new BatchNorm(3, { virtualBatchSize: 1 });
    expect(() => single.forward(new Float32Array(12), [4, 3])).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_TOO_FEW_VALUES' }));
    expect(Array.from(single.runningMean!)).toEqual([0, 0, 0]);
    expect(bn.numBatchesTracked).toBe(0);
  });
});

describe('batch renormalisation', () => {
  test('matches the float64 reference when r and d are inside their limits', () => {
    const ref = checkAgainstReference({ renorm: { rmax: 3, dmax: 5 } });
    expect(ref.r[0].some((v) => v !== 1)).toBe(true);
  });

  test('matches the float64 reference when r and d are clipped, also per ghost batch', () => {
    const ref = checkAgainstReference({ renorm: { rmax: 1.1, dmax: 0.05 } });
    expect(ref.d[0].some((v) => Math.abs(v) === 0.05)).toBe(true);
    checkAgainstReference({ renorm: { rmax: 1.5, dmax: 0.5 }, virtualBatchSize: 6 });
  });

  test('rmax = 1 and dmax = 0 is plain batch norm, bit for bit', () => {
    const plain = makeLayer({});
    const renorm = makeLayer({ renorm: { rmax: 1, dmax: 0 } });
    expectSameBits(renorm.forward(x, shape), plain.forward(x, shape), 'y');
    expectSameBits(renorm.backward(w), plain.backward(w), 'dx');
    expectSameBits(renorm.gradGamma!, plain.gradGamma!, 'dgamma');
  });

  test('backward treats r and d as constants: finite differences with r and d frozen', () => {
    const renorm = { rmax: 3, dmax: 5 };
    const s = () => ({ gamma, beta, runningMean: Float64Array.from(running.mean), runningVar: Float64Array.from(running.variance) });
    const { r: [r0], d: [d0] } = refLayerTrain(x, shape, s(), { renorm });
    // The forward with r and d fixed at r0 and d0, in float64: its exact gradient is what
    // backward must return.
    const g = geometryOf(shape, 1);
    const frozen = (xv: Float32Array, gv: ArrayLike<number>, bv: ArrayLike<number>) => {
      const xhat = refForwardTrain(xv, g).y;
      return weightedSum(xhat.map((v, k) => {
        const c = Math.floor(k / g.inner) % g.channels;
        return gv[c] * (v * r0[c] + d0[c]) + bv[c];
      }), w);
    };
    const bn = makeLayer({ renorm });
    bn.forward(x, shape);
    const dx = bn.backward(w);
    expectGradient(dx, numericGradient((v) => frozen(v, gamma, beta), x), 'dx');
    expectGradient(bn.gradGamma!, numericGradient((gv) => frozen(x, gv, beta), gamma), 'dgamma');
    expectGradient(bn.gradBeta!, numericGradient((bv) => frozen(x, gamma, bv), beta), 'dbeta');
  });

  test('with r and d clipped (so truly constant), backward matches finite differences of the layer itself', () => {
    // Running sigma 10 against batch sigmas ~ 3, and running means far off: every r and d
    // sits on its limit, where small changes of x do not move it.
    const far = { mean: Float32Array.from([8, -8, 8]), variance: Float32Array.from([100, 100, 100]) };
    const renorm = { rmax: 1.05, dmax: 0.1 };
    const s = { gamma, beta, runningMean: Float64Array.from(far.mean), runningVar: Float64Array.from(far.variance) };
    const ref = refLayerTrain(x, shape, s, { renorm });
    expect(Array.from(ref.r[0])).toEqual(new Array(3).fill(1 / 1.05));
    expect(Array.from(ref.d[0], Math.abs)).toEqual([0.1, 0.1, 0.1]);
    checkGradients({ renorm }, far);
  });
});
