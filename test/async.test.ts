/**
 * Async entry points: same bits as the sync ones, computed off the JavaScript thread (the event
 * loop keeps running while a large call is in flight), many calls in flight at once.
 */
import { describe, expect, test } from 'vitest';

import {
  backward,
  backwardAsync,
  forwardInference,
  forwardInferenceAsync,
  forwardTrain,
  forwardTrainAsync,
} from '../lib/index';
import { rng } from './helpers/random';
import { expectSameBits } from './helpers/reference';

const shape = [8, 32, 64, 64];
const n = 8 * 32 * 64 * 64;
const r = rng(3);
const x = r.normals(n, 1, 2);
const dy = r.normals(n);

describe('async results equal sync results', () => {
  test('forwardTrainAsync, forwardInferenceAsync, backwardAsync', async () => {
    const f = forwardTrain(x, shape);
    const fa = await forwardTrainAsync(x, shape);
    expectSameBits(fa.y, f.y, 'y');
    expectSameBits(fa.saveInvStd, f.saveInvStd, 'saveInvStd');
    const opts = { runningMean: f.saveMean, runningVar: f.saveInvStd };
    expectSameBits(await forwardInferenceAsync(x, shape, opts), forwardInference(x, shape, opts), 'inference y');
    const stats = { saveMean: f.saveMean, saveInvStd: f.saveInvStd };
    const ba = await backwardAsync(dy, x, shape, stats);
    const b = backward(dy, x, shape, stats);
    expectSameBits(ba.dx, b.dx, 'dx');
    expectSameBits(ba.dgamma, b.dgamma, 'dgamma');
  });

  test('16 calls in flight at once on different tensors', async () => {
    const inputs = Array.from({ length: 16 }, (_, i) => rng(100 + i).normals(4096 * 3, i, 1 + i));
    const results = await Promise.all(inputs.map((xi) => forwardTrainAsync(xi, [64, 3, 64])));
    results.forEach((res, i) => expectSameBits(res.y, forwardTrain(inputs[i], [64, 3, 64]).y, `call ${i}`));
  });
});

test('the event loop keeps turning while async calls compute', async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const started = performance.now();
  const stats = forwardTrain(x, shape);
  for (let i = 0; i < 10; i++) {
    await backwardAsync(dy, x, shape, { saveMean: stats.saveMean, saveInvStd: stats.saveInvStd });
  }
  const elapsed = performance.now() - started;
  clearInterval(timer);
  // A call computed on the JS thread would starve the timer completely (no ticks while it
  // runs): awaiting an already-settled promise never yields to timers.
  expect(ticks, `${ticks} timer ticks in ${elapsed.toFixed(1)} ms`).toBeGreaterThan(0);
});
