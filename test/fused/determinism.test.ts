/**
 * The fused outputs (y, the ReLU mask, dx, dgamma, dbeta, dresidual) are bitwise identical
 * whatever the thread count, wherever the arrays sit in memory, and whether outputs are written
 * with streaming or cached stores, on every ISA. The shapes make threads split the mask's bytes:
 * NCHW 14x14 runs of 196 floats (tasks start mid-byte), rows split into column blocks, long runs
 * cut into pieces of an odd run length.
 */
import { createRequire } from 'module';
import { afterAll, describe, expect, test } from 'vitest';

import { backendInfo, backward, forwardTrain, setNumThreads } from '../../lib/index';
import { packageRoot } from '../../lib/loader';
import type { NativeBinding } from '../../lib/native-backend';
import { expectMaskOf } from '../helpers/fused-reference';
import { placed } from '../helpers/placement';
import { rng } from '../helpers/random';
import { expectSameBits } from '../helpers/reference';

const require = createRequire(import.meta.url);
const binding = require('node-gyp-build')(packageRoot()) as NativeBinding;
const initial = binding.info();
const defaultThreads = backendInfo().threads;
afterAll(() => {
  binding.configure(initial.isa, initial.threads);
  setNumThreads(defaultThreads);
});

/** Every output of one fused forwardTrain and backward, as float arrays (the mask as bytes). */
function fusedOutputs(x: Float32Array, z: Float32Array, dy: Float32Array, shape: number[], axis: number, place = (a: Float32Array, _k: number) => a) {
  const n = x.length;
  const f = forwardTrain(place(x, 0), shape, { axis, activation: 'relu', residual: place(z, 1), out: place(new Float32Array(n), 2) });
  expectMaskOf(f.reluMask, f.y, 'reluMask');
  const stats = { axis, saveMean: f.saveMean, saveInvStd: f.saveInvStd, activation: 'relu' as const, reluMask: f.reluMask };
  const b = backward(place(dy, 3), place(x, 4), shape, { ...stats, dx: place(new Float32Array(n), 5), dresidual: place(new Float32Array(n), 6) });
  const frozen = backward(dy, x, shape, { ...stats, useGlobalStats: true, dresidual: true });
  return { mask: f.reluMask, floats: { y: f.y, dx: b.dx, dgamma: b.dgamma, dbeta: b.dbeta, dresidual: b.dresidual, frozenDx: frozen.dx } };
}

function expectSameOutputs(got: ReturnType<typeof fusedOutputs>, want: ReturnType<typeof fusedOutputs>, what: string) {
  for (const [key, value] of Object.entries(got.floats)) expectSameBits(value, want.floats[key as keyof typeof got.floats], `${key} ${what}`);
  expect(got.mask, `reluMask ${what}`).toEqual(want.mask);
}

const SHAPES = [
  { shape: [64, 20, 14, 14], axis: 1 }, // runs of 196, in memory order
  { shape: [8, 64, 30, 30], axis: 1 }, // channel by channel, runs of 900
  { shape: [4, 5, 30001], axis: 1 }, // long runs in pieces, odd length
  { shape: [16383, 40], axis: 1 }, // rows
  { shape: [8, 31, 32, 24], axis: -1 }, // NHWC
  { shape: [600, 700], axis: 1 }, // few row chunks: rows split into column blocks
];

describe.each(SHAPES)('$shape axis $axis', ({ shape, axis }) => {
  const n = shape.reduce((p, d) => p * d, 1);
  const r = rng(n + 1);
  const x = r.normals(n, 1, 2);
  const z = r.normals(n);
  const dy = r.normals(n);

  test('1, 2, 3 and 4 threads, and a repeated call, agree bit for bit', () => {
    setNumThreads(1);
    const base = fusedOutputs(x, z, dy, shape, axis);
    for (const threads of [2, 3, 4, 4]) {
      setNumThreads(threads);
      expectSameOutputs(fusedOutputs(x, z, dy, shape, axis), base, `at ${threads} threads`);
    }
  });
});

describe('results do not depend on where the arrays sit, nor on streaming stores', () => {
  const CASES = [
    { shape: [4, 8, 37, 5], axis: 1 },
    { shape: [3, 5, 1037], axis: 1 },
    { shape: [300, 72], axis: 1 },
    { shape: [6, 5, 5, 24], axis: -1 },
  ];
  describe.each(initial.supportedIsas.split(','))('%s', (isa) => {
    test.each(CASES)('$shape axis $axis: float offsets of every array, cached and streaming stores', ({ shape, axis }) => {
      const n = shape.reduce((p, d) => p * d, 1);
      const r = rng(n);
      const x = r.normals(n, 2, 3);
      const z = r.normals(n);
      const dy = r.normals(n);
      binding.configure(isa, 2, Infinity);
      const base = fusedOutputs(x, z, dy, shape, axis);
      for (const streamingBytes of [Infinity, 0]) {
        binding.configure(isa, 2, streamingBytes);
        for (let offset = 0; offset < 16; offset += 3) {
          const got = fusedOutputs(x, z, dy, shape, axis, (a, k) => placed(a, (offset * (k + 1)) % 16));
          expectSameOutputs(got, base, `with arrays at +${offset} floats${streamingBytes === 0 ? ', streaming' : ''}`);
        }
      }
    });
  });
});
