/**
 * SPEC section 5: for a given ISA, results are bitwise identical whatever the thread count and
 * from call to call. Shapes cover both schedules (channel by channel, and phase by phase for
 * few channels) and both loop shapes; each is large enough that 4 threads really split it.
 */
import { afterAll, describe, expect, test } from 'vitest';

import { backendInfo, backward, forwardTrain, setNumThreads } from '../lib/index';
import { placed } from './helpers/placement';
import { rng } from './helpers/random';
import { expectSameBits } from './helpers/reference';

const defaultThreads = backendInfo().threads;
afterAll(() => setNumThreads(defaultThreads));

const SHAPES = [
  { shape: [8, 64, 32, 32], axis: 1 }, // NCHW, channel by channel
  { shape: [16, 3, 128, 128], axis: 1 }, // NCHW, 3 channels: phase by phase
  { shape: [4, 5, 100000], axis: 1 }, // long runs cut into pieces
  { shape: [16384, 40], axis: 1 }, // rows
  { shape: [8, 32, 32, 24], axis: -1 }, // NHWC
  { shape: [64, 20, 14, 14], axis: 1 }, // short runs, in memory order
  { shape: [64, 20, 7, 7], axis: 1 }, // runs short enough to be rows
];

describe.each(SHAPES)('$shape axis $axis', ({ shape, axis }) => {
  const n = shape.reduce((p, d) => p * d, 1);
  const r = rng(n);
  const x = r.normals(n, 5, 2);
  const dy = r.normals(n);

  const run = (threads: number) => {
    setNumThreads(threads);
    const f = forwardTrain(x, shape, { axis });
    const b = backward(dy, x, shape, { axis, saveMean: f.saveMean, saveInvStd: f.saveInvStd });
    return [f.y, f.saveMean, f.saveInvStd, b.dx, b.dgamma, b.dbeta];
  };

  test('1, 2, 3 and 4 threads, and a repeated call, agree bit for bit', () => {
    const base = run(1);
    for (const threads of [2, 3, 4, 4]) {
      run(threads).forEach((out, i) => expectSameBits(out, base[i], `output ${i} at ${threads} threads`));
    }
  });
});

describe('results do not depend on where the arrays sit in memory', () => {
  test.each([
    { shape: [4, 8, 37, 5], axis: 1 },
    { shape: [300, 72], axis: 1 },
    { shape: [6, 5, 5, 24], axis: -1 },
  ])('$shape axis $axis: every float offset of input and output', ({ shape, axis }) => {
    const n = shape.reduce((p, d) => p * d, 1);
    const r = rng(11);
    const x = r.normals(n, 2, 3);
    const dy = r.normals(n);
    const base = forwardTrain(x, shape, { axis });
    const baseDx = backward(dy, x, shape, { axis, saveMean: base.saveMean, saveInvStd: base.saveInvStd }).dx;
    for (let offset = 0; offset < 16; offset++) {
      const out = placed(new Float32Array(n), (offset * 7) % 16);
      const f = forwardTrain(placed(x, offset), shape, { axis, out });
      expectSameBits(f.y, base.y, `y with x at +${offset} floats`);
      expectSameBits(f.saveInvStd, base.saveInvStd, `saveInvStd with x at +${offset} floats`);
      const dx = placed(new Float32Array(n), (offset * 5) % 16);
      backward(placed(dy, offset), placed(x, (offset * 3) % 16), shape, { axis, saveMean: base.saveMean, saveInvStd: base.saveInvStd, dx });
      expectSameBits(dx, baseDx, `dx at +${offset} floats`);
    }
  });
});
