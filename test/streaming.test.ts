/**
 * Streaming (non-temporal) stores: ops touching more than `streamingBytes` write their output
 * that way (native/src/kernels_simd.h, for_stores). The split into ordinary head, streamed
 * whole cache lines and ordinary tail must not change a bit, on any ISA, at any alignment,
 * for runs and rows (folded or not), in place or not, fused backward's dresidual included.
 */
import { createRequire } from 'module';
import { afterAll, describe, expect, test } from 'vitest';

import type { NativeBinding } from '../lib/native-backend';
import { packageRoot } from '../lib/loader';
import { placed } from './helpers/placement';
import { rng } from './helpers/random';
import { expectSameBits } from './helpers/reference';

const require = createRequire(import.meta.url);
const binding = require('node-gyp-build')(packageRoot()) as NativeBinding;
const initial = binding.info();
afterAll(() => binding.configure(initial.isa, initial.threads));

const ISAS = initial.supportedIsas.split(',');
const ALWAYS = 0;
const NEVER = Infinity;

// (outer, C, inner): runs, long runs in pieces, short runs as rows, NC rows that fold with a
// remainder, rows too wide to fold, and one channel.
const GEOMETRIES = [
  [3, 5, 1037],
  [2, 3, 5000],
  [7, 9, 49],
  [1003, 5, 1],
  [301, 67, 1],
  [40, 1500, 1],
  [1, 1, 3001],
];

function outputs(isa: string, streamingBytes: number, [outer, C, inner]: number[], offset: number, inPlace: boolean): Float32Array[] {
  binding.configure(isa, 2, streamingBytes);
  const n = outer * C * inner;
  const r = rng(n + C);
  const x = placed(r.normals(n, 3, 2), offset);
  const dy = placed(r.normals(n), (offset * 3) % 16);
  const gamma = r.normals(C, 1, 0.2);
  const beta = r.normals(C);
  const mean = new Float32Array(C);
  const invStd = new Float32Array(C);
  const y = inPlace ? placed(x, offset) : placed(new Float32Array(n), (offset * 7) % 16);
  binding.forwardTrain(inPlace ? y : x, outer, C, inner, y, gamma, beta, 1e-5, 0.1, null, null, true, mean, invStd);
  const inference = placed(new Float32Array(n), (offset * 5) % 16);
  binding.forwardInference(x, outer, C, inner, inference, gamma, beta, 1e-5, mean, invStd);
  const dgamma = new Float32Array(C);
  const dbeta = new Float32Array(C);
  const dx = inPlace ? placed(dy, (offset * 3) % 16) : placed(new Float32Array(n), (offset * 11) % 16);
  binding.backward(inPlace ? dx : dy, x, outer, C, inner, dx, gamma, mean, invStd, false, dgamma, dbeta);
  const frozen = placed(new Float32Array(n), offset);
  binding.backward(dy, x, outer, C, inner, frozen, gamma, mean, invStd, true, new Float32Array(C), new Float32Array(C));
  // The fused backward (SPEC section 7) with the ReLU mask and a dresidual whose cache lines
  // split elsewhere than dx's, so that it gets a sweep of its own; in place, dx = dy.
  const mask = new Uint8Array(Math.ceil(n / 8));
  binding.forwardTrain(x, outer, C, inner, new Float32Array(n), gamma, beta, 1e-5, 0.1, null, null, true, new Float32Array(C), new Float32Array(C), 0, null, null, true, null, mask);
  const fusedDx = inPlace ? placed(dy, (offset * 3) % 16) : placed(new Float32Array(n), (offset * 11) % 16);
  const dresidual = placed(new Float32Array(n), (offset * 11 + 5) % 16);
  binding.backward(inPlace ? fusedDx : dy, x, outer, C, inner, fusedDx, gamma, mean, invStd, false, new Float32Array(C), new Float32Array(C), 0, null, null, null, null, mask, dresidual);
  return [y, mean, invStd, inference, dx, dgamma, dbeta, frozen, fusedDx, dresidual];
}

describe.each(ISAS)('%s', (isa) => {
  test.each(GEOMETRIES)('(%i, %i, %i): streaming and cached stores agree bit for bit', (...g) => {
    for (const offset of [0, 1, 4, 13]) {
      for (const inPlace of [false, true]) {
        const cached = outputs(isa, NEVER, g, offset, inPlace);
        const streamed = outputs(isa, ALWAYS, g, offset, inPlace);
        streamed.forEach((out, i) => expectSameBits(out, cached[i], `output ${i} at +${offset} floats${inPlace ? ', in place' : ''}`));
      }
    }
  });
});

describe('configuration', () => {
  test('the default threshold is a positive size, and configure restores it', () => {
    expect(initial.streamingBytes).toBeGreaterThan(0);
    expect(binding.configure(initial.isa, 1, ALWAYS).streamingBytes).toBe(0);
    expect(binding.configure(initial.isa, initial.threads).streamingBytes).toBe(initial.streamingBytes);
  });

  test('setNumThreads keeps a threshold that configure set, and moves the default with the thread count', () => {
    const atTwo = binding.configure(initial.isa, 2).streamingBytes;
    const atOne = binding.configure(initial.isa, 1).streamingBytes;
    expect(atTwo).toBeGreaterThanOrEqual(atOne); // the L2 of each thread (Intel), or one LLC
    binding.setNumThreads(2);
    expect(binding.info().streamingBytes).toBe(atTwo);
    binding.configure(initial.isa, 1, 12345);
    binding.setNumThreads(2);
    expect(binding.info().streamingBytes).toBe(12345);
  });

  test('a negative or non-numeric threshold is refused and changes nothing', () => {
    binding.configure(initial.isa, 1, 12345);
    for (const bad of [-1, NaN, '1' as never]) {
      expect(() => binding.configure(initial.isa, 1, bad)).toThrow(/streamingBytes/);
    }
    expect(binding.info().streamingBytes).toBe(12345);
  });
});
