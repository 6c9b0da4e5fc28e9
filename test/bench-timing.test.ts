/** bench/timing.ts: the output check every benchmark runs before it times anything. */
import { expect, test } from 'vitest';

import { relativeError, summarize } from '../bench/timing';

const f32 = (...v: number[]) => Float32Array.from(v);

test('relativeError: the largest difference over max(1, max |reference|)', () => {
  expect(relativeError(f32(1, 2, 3), f32(1, 2, 3))).toBe(0);
  expect(relativeError(f32(1, 2.5, 4), f32(1, 2, 4))).toBeCloseTo(0.5 / 4);
  expect(relativeError(f32(0.25), f32(0.5))).toBeCloseTo(0.25);
});

test('relativeError: a NaN anywhere in the output is never within a tolerance', () => {
  // A NaN before the last element used to be replaced by the next element's error (0 here).
  for (const at of [0, 1, 2]) {
    const out = f32(1, 1, 1);
    out[at] = NaN;
    expect(relativeError(out, f32(1, 1, 1)) <= 1, `NaN at ${at}`).toBe(false);
  }
});

test('relativeError: an output of another length is never within a tolerance', () => {
  expect(relativeError(f32(1, 1, 1, 5), f32(1, 1, 1)) <= 1).toBe(false);
  expect(relativeError(f32(1, 1), f32(1, 1, 1)) <= 1).toBe(false);
});

test('summarize: the median of an even count is the mean of the middle two', () => {
  expect(summarize([4, 1, 3, 2])).toMatchObject({ median: 2.5, reps: 4 });
  expect(summarize([3, 1, 2])).toMatchObject({ median: 2, reps: 3 });
  const ten = summarize([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
  expect(ten).toMatchObject({ median: 5.5, p10: 2, p90: 9 });
});
