/**
 * 64-bit sizes (issue 6, item 5; SPEC section 2). Always: empty tensors whose other dimensions
 * are huge, so that products such as outer * inner pass 2^63 or would take forever to walk.
 * Opt-in with BATCHNORM_TEST_LARGE=1 (about 9 GB of memory, a minute or two): tensors of
 * 2^31 + 16 elements through forwardTrain and forwardInference, in place, in the runs layout,
 * the rows layout and as one long channel, every element checked.
 */
import { describe, expect, test } from 'vitest';

import { backward, backwardSums, batchMoments, forwardInference, forwardTrain } from '../lib/index';
import { expectRelative, geometryOf } from './helpers/reference';

const none = () => new Float32Array(0);

describe('empty tensors with huge dimensions', () => {
  test('zero channels: outer * inner past 2^64 is still more than one value per channel', () => {
    // outer * inner = 2^64 wraps to 0 in int64: training must not see "0 values per channel".
    const { y, saveMean, saveInvStd } = forwardTrain(none(), [2 ** 32, 0, 2 ** 32]);
    expect([y.length, saveMean.length, saveInvStd.length]).toEqual([0, 0, 0]);
    expect(forwardTrain(none(), [2 ** 33 + 1, 0, 2 ** 31]).y.length).toBe(0);
  });

  test('nothing to compute returns at once, whatever the other dimensions', () => {
    const started = performance.now();
    for (const shape of [[2 ** 40, 0, 2 ** 40], [2 ** 45, 3, 0], [0, 3, 2 ** 52]]) {
      const C = shape[1]!;
      const stats = { runningMean: new Float32Array(C), runningVar: new Float32Array(C) };
      expect(forwardInference(none(), shape, stats).length).toBe(0);
      const b = backward(none(), none(), shape, { saveMean: new Float32Array(C), saveInvStd: new Float32Array(C) });
      expect(b.dgamma).toEqual(new Float32Array(C));
    }
    expect(performance.now() - started).toBeLessThan(1000);
  });

  // The addon counts dimensions up to 2^53; outer or inner, products of several dimensions, may
  // pass that (even reach Infinity) when another dimension is 0. The JavaScript backend ran these.
  test.each([
    { shape: [2 ** 30, 2 ** 30, 0], axis: 2 },
    { shape: [2 ** 30, 2 ** 30, 3, 0], axis: 2 },
    { shape: [3, 0, 2 ** 30, 2 ** 30], axis: 1 },
    { shape: [2, 0, ...Array<number>(20).fill(2 ** 52)], axis: 1 },
  ])('outer or inner past 2^53: $shape axis $axis', ({ shape, axis }) => {
    const C = shape[axis]!;
    const zeros = new Float32Array(C);
    const stats = { axis, runningMean: new Float32Array(C), runningVar: new Float32Array(C).fill(1) };
    expect(forwardInference(none(), shape, stats).length).toBe(0);
    const moments = { count: 4, mean: new Float64Array(C).fill(1), m2: new Float64Array(C).fill(3) };
    const trained = forwardTrain(none(), shape, { axis, moments });
    expect([trained.y.length, Array.from(trained.saveMean)]).toEqual([0, Array<number>(C).fill(1)]);
    if (C === 0) expect(forwardTrain(none(), shape, { axis }).saveMean.length).toBe(0);
    expect(batchMoments(none(), shape, { axis }).mean).toEqual(new Float64Array(C));
    const saved = { axis, saveMean: zeros, saveInvStd: zeros };
    expect(backward(none(), none(), shape, saved).dgamma).toEqual(zeros);
    expect(backwardSums(none(), none(), shape, saved).sumDy).toEqual(new Float64Array(C));
  });
});

// ---- 2^31 + 16 elements (opt-in) ----

const LARGE = process.env.BATCHNORM_TEST_LARGE === '1';
const N = 2 ** 31 + 16;
const EPS = 1e-5;

/**
 * Fills x so that channel c holds 10c - 1 in the first half of its values and 10c + 1 in the
 * second (in memory order within each run for the runs layout, by rows for the rows layout):
 * mean 10c and biased variance 1, exactly. Uses fill/copyWithin, which run at memory speed.
 */
function fillHalves(x: Float32Array, shape: number[], axis: number) {
  const g = geometryOf(shape, axis);
  if (g.inner > 1) {
    const half = g.inner / 2;
    for (let o = 0; o < g.outer; o++)
      for (let c = 0; c < g.channels; c++) {
        const start = (o * g.channels + c) * g.inner;
        x.fill(10 * c - 1, start, start + half).fill(10 * c + 1, start + half, start + g.inner);
      }
  } else {
    const half = (g.outer / 2) * g.channels;
    for (const [from, sign] of [[0, -1], [half, 1]] as const) {
      for (let c = 0; c < g.channels; c++) x[from + c] = 10 * c + sign;
      for (let filled = g.channels; filled < half; filled *= 2) x.copyWithin(from + filled, from, from + Math.min(filled, half - filled));
    }
  }
}

/** Null when y[from], y[from + step], ... below `to` all equal y[from] and y[from] is near `want`. */
function wrongIn(y: Float32Array, from: number, to: number, step: number, want: number): string | null {
  const first = y[from]!;
  if (!(Math.abs(first - want) <= 2e-5 * Math.max(1, Math.abs(want)))) return `y[${from}] = ${first}, want ${want}`;
  for (let k = from; k < to; k += step) if (y[k] !== first) return `y[${k}] = ${y[k]}, want ${first} as y[${from}]`;
  return null;
}

/**
 * Null when every element is -s in the first half of its channel's values and +s in the second
 * (as filled by fillHalves), else the first offender. Values of one half of a run or channel
 * are computed alike, so they must be identical.
 */
function firstWrong(y: Float32Array, shape: number[], axis: number, s: number): string | null {
  const g = geometryOf(shape, axis);
  let wrong: string | null = null;
  if (g.inner > 1) {
    for (let run = 0; run < g.outer * g.channels && !wrong; run++) {
      const start = run * g.inner;
      const mid = start + g.inner / 2;
      wrong = wrongIn(y, start, mid, 1, -s) ?? wrongIn(y, mid, start + g.inner, 1, s);
    }
  } else {
    for (let c = 0; c < g.channels && !wrong; c++) {
      wrong = wrongIn(y, c, N / 2, g.channels, -s) ?? wrongIn(y, N / 2 + c, N, g.channels, s);
    }
  }
  return wrong;
}

const LAYOUTS = [
  { name: 'runs', shape: [2, 4, 2 ** 28 + 2], axis: 1 },
  { name: 'rows', shape: [2 ** 28 + 2, 8], axis: -1 },
  { name: 'one channel', shape: [2, 1, 2 ** 30 + 8], axis: 1 },
];

describe.runIf(LARGE)('tensors of 2^31 + 16 elements', () => {
  const x = LARGE ? new Float32Array(N) : none();

  describe.each(LAYOUTS)('$name $shape', ({ shape, axis }) => {
    const C = geometryOf(shape, axis).channels;
    const channelMeans = Float32Array.from({ length: C }, (_, c) => 10 * c);

    test('forwardTrain in place', { timeout: 600_000 }, () => {
      fillHalves(x, shape, axis);
      const runningMean = new Float32Array(C);
      const runningVar = new Float32Array(C);
      const r = forwardTrain(x, shape, { axis, out: x, runningMean, runningVar, momentum: 1, unbiased: false, eps: EPS });
      const ones = new Float32Array(C).fill(1);
      expectRelative(r.saveMean, channelMeans, 'saveMean', ones);
      expectRelative(runningMean, channelMeans, 'runningMean', ones);
      expectRelative(runningVar, ones, 'runningVar');
      expectRelative(r.saveInvStd, ones.map(() => 1 / Math.sqrt(1 + EPS)), 'saveInvStd');
      expect(firstWrong(x, shape, axis, 1 / Math.sqrt(1 + EPS))).toBeNull();
    });

    test('forwardInference in place', { timeout: 600_000 }, () => {
      fillHalves(x, shape, axis);
      const gamma = new Float32Array(C).fill(2);
      forwardInference(x, shape, { axis, out: x, gamma, runningMean: channelMeans, runningVar: new Float32Array(C).fill(1), eps: EPS });
      expect(firstWrong(x, shape, axis, 2 / Math.sqrt(1 + EPS))).toBeNull();
    });
  });
});
