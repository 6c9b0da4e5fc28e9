/**
 * Synchronized statistics (SPEC section 8) on the functional API: a batch split across 1 to 8
 * replicas (unequal and empty shards) and put back together by batchMoments -> mergeMoments ->
 * forwardTrain({ moments }) and backwardSums -> (sum) -> backward({ sums, localSums }) gives a
 * single call's results on the concatenated batch within SPEC section 5, the same bits on every
 * replica and from run to run, and each replica its own dgamma and dbeta. Runs per ISA and on
 * the JS backend (vitest.config.mts).
 */
import { afterAll, describe, expect, test } from 'vitest';

import {
  backendInfo,
  backward,
  backwardAsync,
  backwardSums,
  backwardSumsAsync,
  batchMoments,
  batchMomentsAsync,
  forwardTrain,
  forwardTrainAsync,
  mergeMoments,
  setNumThreads,
  type Moments,
} from '../lib/index';
import { rng } from './helpers/random';
import { expectElementwise, expectRelative, expectSameBits, expectSum, geometryOf, refBackward, refForwardTrain } from './helpers/reference';
import { concat, shards, unequalRows, type Shard } from './helpers/replicas';

const defaultThreads = backendInfo().threads;
afterAll(() => setNumThreads(defaultThreads));

/** Layouts: NCHW as rows (inner < 64) and as runs, channels-last, and a dense layer's [N, C]. */
const LAYOUTS = [
  { name: 'NCHW, short runs', shape: [19, 3, 5, 7], axis: 1 },
  { name: 'NCHW, long runs', shape: [13, 4, 9, 10], axis: 1 },
  { name: 'NHWC', shape: [17, 4, 5, 6], axis: -1 },
  { name: '[N, C]', shape: [23, 7], axis: 1 },
];

const f64Bits = (a: Float64Array) => Array.from(new BigUint64Array(a.buffer, a.byteOffset, a.length));

/** Sums every replica's backwardSums in rank order, as a collective does. */
function addSums(parts: { sumDy: Float64Array; sumDyXmu: Float64Array }[], count: number) {
  const C = parts[0]!.sumDy.length;
  const total = { count, sumDy: new Float64Array(C), sumDyXmu: new Float64Array(C) };
  for (const p of parts) {
    for (let c = 0; c < C; c++) {
      total.sumDy[c] += p.sumDy[c];
      total.sumDyXmu[c] += p.sumDyXmu[c];
    }
  }
  return total;
}

interface StepOptions {
  axis: number;
  gamma: Float32Array;
  beta: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
}

/** One synchronized training step of every replica, as data-parallel replicas run it. */
function synchronizedStep(parts: Shard[], opts: StepOptions) {
  const { axis, gamma, beta } = opts;
  const moments = mergeMoments(parts.map((p) => batchMoments(p.x, p.shape, { axis })));
  const forward = parts.map((p) => {
    // each replica keeps its own copy of the running statistics
    const running = { runningMean: opts.runningMean.slice(), runningVar: opts.runningVar.slice() };
    return { ...forwardTrain(p.x, p.shape, { axis, gamma, beta, moments, ...running }), ...running };
  });
  const { saveMean, saveInvStd } = forward[0]!;
  const own = parts.map((p) => backwardSums(p.dy, p.x, p.shape, { axis, saveMean }));
  const sums = addSums(own, moments.count);
  const grads = parts.map((p, k) => backward(p.dy, p.x, p.shape, { axis, gamma, saveMean, saveInvStd, sums, localSums: own[k] }));
  return { moments, forward, grads };
}

describe.each(LAYOUTS)('$name: a batch split across replicas equals one call on the whole batch', ({ shape, axis }) => {
  const r = rng(shape.length * 100 + shape[0]!);
  const n = shape.reduce((p, d) => p * d, 1);
  const g = geometryOf(shape, axis);
  const C = g.channels;
  const x = r.normals(n, 3, 2);
  const dy = r.normals(n);
  const opts: StepOptions = { axis, gamma: r.normals(C, 1, 0.3), beta: r.normals(C), runningMean: r.normals(C), runningVar: Float32Array.from(r.normals(C), (v) => 1 + Math.abs(v)) };
  const ref = refForwardTrain(x, g, opts);
  const M = g.outer * g.inner;
  const momentum = 0.1;

  test.each([1, 2, 3, 4, 5, 6, 7, 8])('%i replicas, unequal and empty shards', (replicas) => {
    const parts = shards(x, dy, shape, unequalRows(r, shape[0]!, replicas));
    const { moments, forward, grads } = synchronizedStep(parts, opts);
    expect(moments.count).toBe(M);
    // forward: y, the saved and the running statistics of the whole batch
    expectElementwise(concat(forward.map((f) => f.y)), ref.y, 'y');
    expectRelative(forward[0]!.saveMean, ref.mean, 'saveMean', ref.invStd.map((s) => 1 / s));
    expectRelative(forward[0]!.saveInvStd, ref.invStd, 'saveInvStd');
    expectRelative(forward[0]!.runningMean, Array.from(ref.mean, (m, c) => (1 - momentum) * opts.runningMean[c] + momentum * m), 'runningMean');
    expectRelative(forward[0]!.runningVar, Array.from(ref.variance, (v, c) => (1 - momentum) * opts.runningVar[c] + (momentum * v * M) / (M - 1)), 'runningVar');
    // backward: dx of the whole batch; dgamma and dbeta each replica's own
    const { saveMean, saveInvStd } = forward[0]!;
    const whole = refBackward(dy, x, g, { saveMean, saveInvStd, gamma: opts.gamma });
    expectElementwise(concat(grads.map((b) => b.dx)), whole.dx, 'dx');
    parts.forEach((p, k) => {
      const own = refBackward(p.dy, p.x, geometryOf(p.shape, axis), { saveMean, saveInvStd, gamma: opts.gamma });
      expectSum(grads[k]!.dgamma, own.dgamma, own.dgammaScale, `replica ${k} dgamma`);
      expectSum(grads[k]!.dbeta, own.dbeta, own.dbetaScale, `replica ${k} dbeta`);
    });
    // every replica holds the same statistics, bit for bit
    for (const f of forward.slice(1)) {
      for (const key of ['saveMean', 'saveInvStd', 'runningMean', 'runningVar'] as const) expectSameBits(f[key], forward[0]![key], key);
    }
  });

  test('the same bits from run to run', () => {
    const rows = unequalRows(r, shape[0]!, 5);
    const bits = () => {
      const { moments, forward, grads } = synchronizedStep(shards(x, dy, shape, rows), opts);
      return [f64Bits(moments.mean), f64Bits(moments.m2), ...forward.map((f) => Array.from(f.y)), ...grads.flatMap((b) => [Array.from(b.dx), Array.from(b.dgamma)])];
    };
    expect(bits()).toEqual(bits());
  });
});

describe('one replica is an ordinary call, bit for bit', () => {
  const r = rng(5);
  const shape = [6, 5, 70];
  const x = r.normals(2100, -2, 3);
  const dy = r.normals(2100);
  const gamma = r.normals(5, 1, 0.2);

  test('forwardTrain with batchMoments(x) as moments', () => {
    const moments = mergeMoments([batchMoments(x, shape)]);
    const plain = forwardTrain(x, shape, { gamma, runningMean: new Float32Array(5), runningVar: new Float32Array(5).fill(1) });
    const given = forwardTrain(x, shape, { gamma, runningMean: new Float32Array(5), runningVar: new Float32Array(5).fill(1), moments });
    for (const key of ['y', 'saveMean', 'saveInvStd'] as const) expectSameBits(given[key], plain[key], key);
  });

  test('backward with its own backwardSums as sums, with and without localSums', () => {
    const { saveMean, saveInvStd } = forwardTrain(x, shape);
    const plain = backward(dy, x, shape, { gamma, saveMean, saveInvStd });
    const sums = backwardSums(dy, x, shape, { saveMean });
    for (const opts of [{ sums }, { sums, localSums: sums }]) {
      const given = backward(dy, x, shape, { gamma, saveMean, saveInvStd, ...opts });
      for (const key of ['dx', 'dgamma', 'dbeta'] as const) expectSameBits(given[key], plain[key], key);
    }
  });
});

describe('batchMoments and mergeMoments', () => {
  const r = rng(11);

  test('batchMoments: count, mean and M2 of each channel', () => {
    const shape = [9, 4, 33];
    const x = r.normals(9 * 4 * 33, 5, 2);
    const g = geometryOf(shape);
    const ref = refForwardTrain(x, g);
    const m = batchMoments(x, shape);
    expect(m.count).toBe(9 * 33);
    expectRelative(Float32Array.from(m.mean), ref.mean, 'mean', ref.invStd.map((s) => 1 / s));
    expectRelative(Float32Array.from(m.m2), ref.variance.map((v) => v * m.count), 'm2');
  });

  test('an empty batch has count 0 and zero moments', () => {
    const m = batchMoments(new Float32Array(0), [0, 3, 4]);
    expect(m).toEqual({ count: 0, mean: new Float64Array(3), m2: new Float64Array(3) });
  });

  test('parts with count 0 contribute nothing, whatever their numbers', () => {
    const a = batchMoments(r.normals(40, 1, 2), [10, 4]);
    const empty = { count: 0, mean: new Float64Array(4).fill(NaN), m2: new Float64Array(4).fill(Infinity) };
    const merged = mergeMoments([empty, a, empty]);
    expect(f64Bits(merged.mean)).toEqual(f64Bits(a.mean));
    expect(f64Bits(merged.m2)).toEqual(f64Bits(a.m2));
    expect(merged.count).toBe(10);
    expect(mergeMoments([empty, empty])).toEqual({ count: 0, mean: new Float64Array(4), m2: new Float64Array(4) });
  });

  test('a mean 10^4 standard deviations from zero merges as accurately as one batch', () => {
    const shape = [64, 3, 16];
    const x = r.normals(64 * 48, 1e4, 1);
    const dy = new Float32Array(x.length);
    const ref = refForwardTrain(x, geometryOf(shape));
    const parts = shards(x, dy, shape, [1, 30, 0, 33]);
    const moments = mergeMoments(parts.map((p) => batchMoments(p.x, p.shape)));
    const y = concat(parts.map((p) => forwardTrain(p.x, p.shape, { moments }).y));
    expectElementwise(y, ref.y, 'y');
    expectRelative(Float32Array.from(moments.m2, (m2) => m2 / moments.count), ref.variance, 'variance');
  });

  test('no channels: forwardTrain with moments returns empty outputs (the moments, though empty, were given)', () => {
    for (const shape of [[0, 0, 1], [0, 0], [1, 0, 1]]) {
      const result = forwardTrain(new Float32Array(0), shape, { moments: { count: 7, mean: new Float64Array(0), m2: new Float64Array(0) } });
      expect([result.y.length, result.saveMean.length], `[${shape.join(', ')}]`).toEqual([0, 0]);
    }
  });

  test('a replica with 0 or 1 values per channel trains with the merged count', () => {
    const x = r.normals(12, 0, 1);
    const parts = shards(x, x, [4, 3], [0, 1, 3]);
    const moments = mergeMoments(parts.map((p) => batchMoments(p.x, p.shape)));
    const ref = refForwardTrain(x, geometryOf([4, 3]));
    for (const p of parts) expectRelative(forwardTrain(p.x, p.shape, { moments }).saveMean, ref.mean, 'saveMean', ref.invStd.map((s) => 1 / s));
  });
});

describe('async forms give the sync bits', () => {
  const r = rng(13);
  const shape = [8, 6, 25];
  const x = r.normals(1200, 1, 2);
  const dy = r.normals(1200);

  test('batchMomentsAsync, forwardTrainAsync with moments, backwardSumsAsync, backwardAsync with sums', async () => {
    const moments: Moments = batchMoments(x, shape);
    const m = await batchMomentsAsync(x, shape);
    expect(f64Bits(m.mean)).toEqual(f64Bits(moments.mean));
    expect(f64Bits(m.m2)).toEqual(f64Bits(moments.m2));
    const f = forwardTrain(x, shape, { moments });
    expectSameBits((await forwardTrainAsync(x, shape, { moments })).y, f.y, 'y');
    const sums = backwardSums(dy, x, shape, { saveMean: f.saveMean });
    const s = await backwardSumsAsync(dy, x, shape, { saveMean: f.saveMean });
    expect([f64Bits(s.sumDy), f64Bits(s.sumDyXmu)]).toEqual([f64Bits(sums.sumDy), f64Bits(sums.sumDyXmu)]);
    const opts = { saveMean: f.saveMean, saveInvStd: f.saveInvStd, sums, localSums: sums };
    expectSameBits((await backwardAsync(dy, x, shape, opts)).dx, backward(dy, x, shape, opts).dx, 'dx');
  });
});

describe.skipIf(backendInfo().backend !== 'native')('native: the same bits for any thread count', () => {
  const r = rng(17);
  const cases = [
    { shape: [16, 8, 64, 64], axis: 1 }, // runs
    { shape: [4096, 48], axis: 1 }, // rows
  ];
  test.each(cases)('$shape', ({ shape, axis }) => {
    const n = shape.reduce((p, d) => p * d, 1);
    const x = r.normals(n, 2, 3);
    const dy = r.normals(n);
    const run = (threads: number) => {
      setNumThreads(threads);
      const moments = batchMoments(x, shape, { axis });
      const f = forwardTrain(x, shape, { axis, moments });
      const sums = backwardSums(dy, x, shape, { axis, saveMean: f.saveMean });
      const b = backward(dy, x, shape, { axis, saveMean: f.saveMean, saveInvStd: f.saveInvStd, sums, localSums: sums });
      return [f64Bits(moments.mean), f64Bits(moments.m2), f64Bits(sums.sumDy), f64Bits(sums.sumDyXmu), Array.from(f.y.subarray(0, 4096)), Array.from(b.dx.subarray(-4096))];
    };
    expect(run(2)).toEqual(run(1));
  });
});
