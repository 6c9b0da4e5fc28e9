/**
 * Concurrency (issue 6, item 4): many async calls in flight at once give the sync results bit
 * for bit; setNumThreads while async work runs changes no result; worker threads load the addon
 * together, compute, and are terminated with calls in flight without taking the process down.
 */
import { afterAll, describe, expect, test } from 'vitest';

import * as bn from '../lib/index';
import { cleanExit, runChild } from './helpers/child';
import { rng } from './helpers/random';
import { expectSameBits } from './helpers/reference';

const defaultThreads = bn.backendInfo().threads;
afterAll(() => bn.setNumThreads(defaultThreads));

/** Shapes across the schedules: channel by channel, phase by phase, long runs, rows, NHWC. */
const SHAPES = [
  { shape: [4, 16, 48, 48], axis: 1 },
  { shape: [8, 3, 96, 96], axis: 1 },
  { shape: [2, 3, 40000], axis: 1 },
  { shape: [4096, 40], axis: 1 },
  { shape: [8, 24, 24, 16], axis: -1 },
  { shape: [64, 20, 7, 7], axis: 1 },
];

interface Job {
  sync(): Float32Array[];
  async(): Promise<Float32Array[]>;
}

/** Call i: one of the three operations on its own tensor (shape, data and options). */
function job(i: number): Job {
  const { shape, axis } = SHAPES[i % SHAPES.length]!;
  const n = shape.reduce((p, d) => p * d, 1);
  const C = shape[axis < 0 ? shape.length + axis : axis]!;
  const r = rng(1000 + i);
  const x = r.normals(n, i - 32, 1 + (i % 5));
  const gamma = r.normals(C, 1, 0.2);
  const beta = r.normals(C);
  switch (i % 3) {
    case 0: {
      const opts = () => ({ axis, gamma, beta, runningMean: new Float32Array(C), runningVar: new Float32Array(C).fill(1) });
      const outputs = (o: ReturnType<typeof opts>, f: bn.ForwardTrainResult) => [f.y, f.saveMean, f.saveInvStd, o.runningMean, o.runningVar];
      return {
        sync: () => { const o = opts(); return outputs(o, bn.forwardTrain(x, shape, o)); },
        async: async () => { const o = opts(); return outputs(o, await bn.forwardTrainAsync(x, shape, o)); },
      };
    }
    case 1: {
      const opts = { axis, gamma, beta, runningMean: r.normals(C), runningVar: Float32Array.from(r.normals(C), (v) => v * v + 0.1) };
      return { sync: () => [bn.forwardInference(x, shape, opts)], async: async () => [await bn.forwardInferenceAsync(x, shape, opts)] };
    }
    default: {
      const dy = r.normals(n);
      const stats = bn.forwardTrain(x, shape, { axis });
      const opts = { axis, gamma, saveMean: stats.saveMean, saveInvStd: stats.saveInvStd };
      const outputs = (b: bn.BackwardResult) => [b.dx, b.dgamma, b.dbeta];
      return { sync: () => outputs(bn.backward(dy, x, shape, opts)), async: async () => outputs(await bn.backwardAsync(dy, x, shape, opts)) };
    }
  }
}

function expectAllSame(got: Float32Array[][], want: Float32Array[][]) {
  got.forEach((outputs, i) => outputs.forEach((a, k) => expectSameBits(a, want[i]![k]!, `call ${i} output ${k}`)));
}

const jobs = Array.from({ length: 64 }, (_, i) => job(i));

describe('async calls in flight at once', () => {
  test('64 calls on different tensors give the sync results bit for bit', async () => {
    const expected = jobs.map((j) => j.sync());
    expectAllSame(await Promise.all(jobs.map((j) => j.async())), expected);
  });

  test('setNumThreads while async work runs changes no result', async () => {
    bn.setNumThreads(1);
    const expected = jobs.map((j) => j.sync());
    let threads = 1;
    const cycle = () => bn.setNumThreads((threads = (threads % 4) + 1));
    const timer = setInterval(cycle, 0);
    const pending = jobs.map((j) => {
      cycle(); // each call is queued at a different thread count
      return j.async();
    });
    const got = await Promise.all(pending);
    clearInterval(timer);
    expectAllSame(got, expected);
  });
});

test('4 worker threads per round load the addon together, compute, and are terminated with calls in flight', () => {
  const result = cleanExit<{ rounds: number }>(runChild('workers.js', { args: ['3'] }));
  expect(result.rounds).toBe(3);
});
