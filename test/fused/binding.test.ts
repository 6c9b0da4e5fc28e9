/**
 * The raw binding's fused arguments (SPEC section 7), bypassing lib/: it re-checks their types,
 * lengths and overlaps itself, so a wrong call throws instead of touching memory it does not
 * own; the trailing fused arguments may be left out (no fusion). backwardSums takes the mask too
 * (SPEC section 8: the sums of the ReLU's gradient).
 */
import { createRequire } from 'module';
import { describe, expect, test } from 'vitest';

import type { NativeBinding } from '../../lib/native-backend';
import { packageRoot } from '../../lib/loader';

const require = createRequire(import.meta.url);
const binding = require('node-gyp-build')(packageRoot()) as NativeBinding;

const f = (n: number) => new Float32Array(n);
const m = (n: number) => new Uint8Array(n);
/** forwardTrain on [3, 2, 1] (n = 6, one mask byte) with the given fused arguments (no given moments). */
const train = (relu: unknown, residual: unknown, mask: unknown, x = f(6), y = f(6)) =>
  binding.forwardTrain(x, 3, 2, 1, y, null, null, 1e-5, 0.1, null, null, true, f(2), f(2), 0, null, null, relu as boolean, residual as Float32Array, mask as Uint8Array);
/** backward on the same, with the given fused arguments (no given sums). */
const back = (mask: unknown, dresidual: unknown, dy = f(6), dx = f(6)) =>
  binding.backward(dy, f(6), 3, 2, 1, dx, null, f(2), f(2), false, f(2), f(2), 0, null, null, null, null, mask as Uint8Array, dresidual as Float32Array);

const BAD: Array<{ name: string; call: () => unknown; type: typeof TypeError | typeof RangeError }> = [
  { name: 'relu not a boolean', call: () => train(1, null, m(1)), type: TypeError },
  { name: 'relu without a mask', call: () => train(true, null, null), type: TypeError },
  { name: 'a mask without relu', call: () => train(false, null, m(1)), type: RangeError },
  { name: 'a mask of the wrong length', call: () => train(true, null, m(2)), type: RangeError },
  { name: 'a Float32Array mask', call: () => train(true, null, f(1)), type: TypeError },
  { name: 'a Uint8ClampedArray mask', call: () => train(true, null, new Uint8ClampedArray(1)), type: TypeError },
  { name: 'a residual of the wrong length', call: () => train(false, f(5), null), type: RangeError },
  { name: 'residual = x', call: () => { const x = f(6); return train(false, x, null, x); }, type: RangeError },
  { name: 'a mask inside y', call: () => { const y = f(6); return train(true, null, new Uint8Array(y.buffer, 4, 1), f(6), y); }, type: RangeError },
  { name: 'inference residual partly overlapping out', call: () => { const b = f(7); return binding.forwardInference(f(6), 3, 2, 1, b.subarray(1), null, null, 1e-5, f(2), f(2), true, b.subarray(0, 6)); }, type: RangeError },
  { name: 'backward mask of the wrong length', call: () => back(m(3), null), type: RangeError },
  { name: 'backward mask inside dy', call: () => { const dy = f(6); return back(new Uint8Array(dy.buffer, 0, 1), null, dy); }, type: RangeError },
  { name: 'dresidual of the wrong length', call: () => back(null, f(3)), type: RangeError },
  { name: 'dresidual = dx', call: () => { const d = f(6); return back(null, d, f(6), d); }, type: RangeError },
  { name: 'dresidual = dy = dx', call: () => { const d = f(6); return back(null, d, d, d); }, type: RangeError },
  { name: 'backwardSums mask of the wrong length', call: () => binding.backwardSums(f(6), f(6), 3, 2, 1, f(2), new Float64Array(2), new Float64Array(2), m(2)), type: RangeError },
  { name: 'backwardSums mask a Float32Array', call: () => binding.backwardSums(f(6), f(6), 3, 2, 1, f(2), new Float64Array(2), new Float64Array(2), f(1) as never), type: TypeError },
];

describe('the raw binding rejects', () => {
  test.each(BAD)('$name', ({ call, type }) => {
    expect(call).toThrow(type);
  });

  test('async entry points throw synchronously on bad fused arguments, before queueing work', () => {
    expect(() => binding.backwardAsync(f(6), f(6), 3, 2, 1, f(6), null, f(2), f(2), false, f(2), f(2), 0, null, null, null, null, m(2))).toThrow(RangeError);
  });
});

test('the raw binding accepts the in-place pairs out = residual and dresidual = dy, and computes', () => {
  const residual = new Float32Array([1, 1, 1, 1, 1, 1]);
  const mask = m(1).fill(0xff);
  train(true, residual, mask, new Float32Array([0, 5, 2, 5, 4, 5]), residual);
  // Channel 0 normalises to about -1.22, 0, 1.22; plus 1 and through the ReLU: 0, 1, 2.22.
  expect(Array.from(residual).map((v) => Math.round(v * 100) / 100)).toEqual([0, 1, 1, 1, 2.22, 1]);
  expect(mask[0]).toBe(0b111110);
  const dy = new Float32Array([1, 2, 3, 4, 5, 6]);
  back(mask, dy, dy);
  expect(Array.from(dy)).toEqual([0, 2, 3, 4, 5, 6]);
});
