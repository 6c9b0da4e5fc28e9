/**
 * The float64 reference of SPEC section 7, as the unfused composition a user would write:
 * BatchNorm (helpers/reference.ts), then the residual add and the ReLU as separate steps; in
 * backward, the ReLU's gradient first and then the ordinary backward. Plus the mask's bits.
 */
import { expect } from 'vitest';

import { refBackward, type Geometry, type RefBackward } from './reference';

export type Activation = 'identity' | 'relu';

/** relu(v) = v > 0 ? v : 0, NaN kept. */
export const relu = (v: number) => (v > 0 || v !== v ? v : 0);

/** y = activation(bn + residual), elementwise in float64. */
export function refEpilogue(bn: ArrayLike<number>, residual: Float32Array | undefined, activation: Activation): Float64Array {
  return Float64Array.from(bn, (v, i) => {
    const pre = residual ? v + residual[i] : v;
    return activation === 'relu' ? relu(pre) : pre;
  });
}

/** Bit i of a bit-packed mask. */
export const maskBit = (mask: Uint8Array, i: number) => (mask[i >> 3] >> (i & 7)) & 1;

/** The gradient through the ReLU: g = bit ? dy : 0 (a select: NaN dy with bit 0 gives 0). */
export function maskGradient(dy: Float32Array, mask: Uint8Array | undefined): Float32Array {
  return mask ? dy.map((d, i) => (maskBit(mask, i) ? d : 0)) : dy;
}

/** SPEC section 7's backward as the composition: refBackward on g, and dresidual = g. */
export function refFusedBackward(
  dy: Float32Array,
  x: Float32Array,
  g: Geometry,
  o: { saveMean: Float32Array; saveInvStd: Float32Array; gamma?: Float32Array; useGlobalStats?: boolean; reluMask?: Uint8Array },
): RefBackward & { dresidual: Float32Array } {
  const grad = maskGradient(dy, o.reluMask);
  return { ...refBackward(grad, x, g, o), dresidual: grad };
}

/** The mask holds y > 0 for each element of `y`, and 0 in the bits past its end. */
export function expectMaskOf(mask: Uint8Array | undefined, y: Float32Array, what: string) {
  expect(mask, what).toBeInstanceOf(Uint8Array);
  expect(mask!.length, `${what} length`).toBe(Math.ceil(y.length / 8));
  for (let i = 0; i < y.length; i++) {
    if (maskBit(mask!, i) !== (y[i] > 0 ? 1 : 0)) expect.fail(`${what} bit ${i} is ${maskBit(mask!, i)} for y = ${y[i]}`);
  }
  if (y.length % 8) expect(mask![mask!.length - 1] >> y.length % 8, `${what} padding bits`).toBe(0);
}
