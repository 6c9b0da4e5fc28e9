/**
 * The raw addon, bypassing lib/: it re-checks types, lengths, ranges and overlaps itself, so a
 * wrong call throws a JS error instead of touching memory it does not own.
 */
import { createRequire } from 'module';
import { describe, expect, test } from 'vitest';

import type { NativeBinding } from '../lib/native-backend';
import { packageRoot } from '../lib/loader';

const require = createRequire(import.meta.url);
const binding = require('node-gyp-build')(packageRoot()) as NativeBinding;

const f = (n: number) => new Float32Array(n);
const d = (n: number) => new Float64Array(n);
type Call = () => unknown;

const BAD: Array<{ name: string; call: Call; type: typeof TypeError | typeof RangeError }> = [
  { name: 'no arguments', call: () => (binding.forwardTrain as () => void)(), type: TypeError },
  { name: 'x a Float64Array', call: () => binding.forwardInference(new Float64Array(4) as never, 2, 2, 1, f(4), null, null, 1e-5, f(2), f(2)), type: TypeError },
  { name: 'geometry larger than x', call: () => binding.forwardInference(f(4), 2, 2, 2, f(4), null, null, 1e-5, f(2), f(2)), type: RangeError },
  { name: 'geometry overflowing int64', call: () => binding.forwardInference(f(4), 2 ** 53, 2 ** 53, 2 ** 53, f(4), null, null, 1e-5, f(2), f(2)), type: RangeError },
  { name: 'negative geometry', call: () => binding.forwardInference(f(4), -2, -2, 1, f(4), null, null, 1e-5, f(2), f(2)), type: RangeError },
  { name: 'fractional geometry', call: () => binding.forwardInference(f(4), 0.5, 8, 1, f(4), null, null, 1e-5, f(8), f(8)), type: RangeError },
  { name: 'y too short', call: () => binding.forwardInference(f(4), 2, 2, 1, f(3), null, null, 1e-5, f(2), f(2)), type: RangeError },
  { name: 'runningMean too short', call: () => binding.forwardInference(f(4), 2, 2, 1, f(4), null, null, 1e-5, f(1), f(2)), type: RangeError },
  { name: 'gamma too long', call: () => binding.forwardTrain(f(4), 2, 2, 1, f(4), f(9), null, 1e-5, 0.1, null, null, true, f(2), f(2)), type: RangeError },
  { name: 'eps NaN', call: () => binding.forwardTrain(f(4), 2, 2, 1, f(4), null, null, NaN, 0.1, null, null, true, f(2), f(2)), type: RangeError },
  { name: 'momentum 2', call: () => binding.forwardTrain(f(4), 2, 2, 1, f(4), null, null, 1e-5, 2, null, null, true, f(2), f(2)), type: RangeError },
  { name: 'one value per channel', call: () => binding.forwardTrain(f(2), 1, 2, 1, f(2), null, null, 1e-5, 0.1, null, null, true, f(2), f(2)), type: RangeError },
  { name: 'unbiased not a boolean', call: () => binding.forwardTrain(f(4), 2, 2, 1, f(4), null, null, 1e-5, 0.1, null, null, 1 as never, f(2), f(2)), type: TypeError },
  {
    name: 'saveMean overlapping saveInvStd',
    call: () => { const s = f(3); return binding.forwardTrain(f(4), 2, 2, 1, f(4), null, null, 1e-5, 0.1, null, null, true, s.subarray(0, 2), s.subarray(1, 3)); },
    type: RangeError,
  },
  {
    name: 'dx partly overlapping dy',
    call: () => { const s = f(5); return binding.backward(s.subarray(0, 4), f(4), 2, 2, 1, s.subarray(1, 5), null, f(2), f(2), false, f(2), f(2)); },
    type: RangeError,
  },
  { name: 'dx aliasing x', call: () => { const x = f(4); return binding.backward(f(4), x, 2, 2, 1, x, null, f(2), f(2), false, f(2), f(2)); }, type: RangeError },
  { name: 'threads 0', call: () => binding.setNumThreads(0), type: RangeError },
  { name: 'streamBandwidth reps past 10^6 (an int in the probe)', call: () => binding.streamBandwidth('copy', 16, 1, 2 ** 32), type: RangeError },
  { name: 'streamBandwidth floats past 2^30', call: () => binding.streamBandwidth('copy', 2 ** 31, 1, 1), type: RangeError },
  // synchronized statistics (SPEC section 8)
  { name: 'momentsMean a Float32Array', call: () => binding.forwardTrain(f(4), 2, 2, 1, f(4), null, null, 1e-5, 0.1, null, null, true, f(2), f(2), 4, f(2) as never, d(2)), type: TypeError },
  { name: 'momentsM2 without momentsMean', call: () => binding.forwardTrain(f(4), 2, 2, 1, f(4), null, null, 1e-5, 0.1, null, null, true, f(2), f(2), 4, null, d(2)), type: TypeError },
  { name: 'momentsCount of 1', call: () => binding.forwardTrain(f(0), 0, 2, 1, f(0), null, null, 1e-5, 0.1, null, null, true, f(2), f(2), 1, d(2), d(2)), type: RangeError },
  { name: 'momentsCount negative', call: () => binding.forwardTrain(f(4), 2, 2, 1, f(4), null, null, 1e-5, 0.1, null, null, true, f(2), f(2), -4, d(2), d(2)), type: RangeError },
  { name: 'momentsMean too short', call: () => binding.forwardTrain(f(4), 2, 2, 1, f(4), null, null, 1e-5, 0.1, null, null, true, f(2), f(2), 4, d(1), d(2)), type: RangeError },
  { name: 'batchMoments mean too short', call: () => binding.batchMoments(f(4), 2, 2, 1, d(1), d(2)), type: RangeError },
  { name: 'batchMoments m2 aliasing mean', call: () => { const m = d(2); return binding.batchMoments(f(4), 2, 2, 1, m, m); }, type: RangeError },
  { name: 'batchMoments mean on the bytes of x', call: () => { const b = new ArrayBuffer(32); return binding.batchMoments(new Float32Array(b, 0, 4), 2, 2, 1, new Float64Array(b, 8, 2), d(2)); }, type: RangeError },
  { name: 'backwardSums sumDy a Float32Array', call: () => binding.backwardSums(f(4), f(4), 2, 2, 1, f(2), f(2) as never, d(2)), type: TypeError },
  { name: 'backwardSums geometry larger than dy', call: () => binding.backwardSums(f(4), f(4), 2, 2, 2, f(2), d(2), d(2)), type: RangeError },
  { name: 'backward own sums without totals', call: () => binding.backward(f(4), f(4), 2, 2, 1, f(4), null, f(2), f(2), false, f(2), f(2), 2, null, null, d(2), d(2)), type: RangeError },
  { name: 'backward totals with useGlobalStats', call: () => binding.backward(f(4), f(4), 2, 2, 1, f(4), null, f(2), f(2), true, f(2), f(2), 2, d(2), d(2)), type: RangeError },
  { name: 'backward totalSumDy too long', call: () => binding.backward(f(4), f(4), 2, 2, 1, f(4), null, f(2), f(2), false, f(2), f(2), 2, d(3), d(2)), type: RangeError },
  { name: 'backward totalCount fractional', call: () => binding.backward(f(4), f(4), 2, 2, 1, f(4), null, f(2), f(2), false, f(2), f(2), 2.5, d(2), d(2)), type: RangeError },
  {
    name: 'backward dgamma on the bytes of the totals',
    call: () => { const b = new ArrayBuffer(16); return binding.backward(f(4), f(4), 2, 2, 1, f(4), null, f(2), f(2), false, new Float32Array(b, 0, 2), f(2), 2, new Float64Array(b), d(2)); },
    type: RangeError,
  },
  {
    name: 'a freshOutputs flag that is not a boolean',
    call: () => binding.forwardInference(f(4), 2, 2, 1, f(4), null, null, 1e-5, f(2), f(2), false, null, 1 as unknown as boolean),
    type: TypeError,
  },
];

describe('the raw binding rejects', () => {
  test.each(BAD)('$name', ({ call, type }) => {
    expect(call).toThrow(type);
  });

  test('configure with a bad thread count changes nothing (the streaming threshold included)', () => {
    const before = binding.info();
    expect(() => binding.configure(before.isa, 0, 0)).toThrow(RangeError);
    expect(binding.info()).toEqual(before);
  });

  test('async entry points throw synchronously on bad arguments, before queueing work', () => {
    expect(() => binding.forwardInferenceAsync(f(4), 2, 2, 2, f(4), null, null, 1e-5, f(2), f(2))).toThrow(RangeError);
  });
});

test('the raw binding accepts the in-place pairs', () => {
  const x = new Float32Array([1, 2, 3, 4]);
  binding.forwardTrain(x, 2, 2, 1, x, null, null, 1e-5, 0.1, null, null, true, f(2), f(2));
  expect(Array.from(x).map((v) => Math.round(v))).toEqual([-1, -1, 1, 1]);
  const dy = new Float32Array([1, 1, 1, 1]);
  binding.backward(dy, f(4), 2, 2, 1, dy, null, f(2), new Float32Array([1, 1]), true, f(2), f(2));
  expect(Array.from(dy)).toEqual([1, 1, 1, 1]);
});
