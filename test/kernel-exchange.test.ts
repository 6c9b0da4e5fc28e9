/**
 * BatchNorm layers synchronized inside the native kernels (SPEC section 8;
 * lib/collective/kernel-exchange.ts, native/src/channel_exchange.h): with real worker threads
 * (test/child/kernel-exchange-workers.js), the same bits as the split path on every replica
 * (both layouts, fused ReLU and residual, unequal and empty shards, mixed thread counts, a main
 * thread that runs async), one layer's results on the whole batch within SPEC section 5, and
 * failures that end in the group's errors with the running statistics kept. Then, in this
 * process: which layers take the path, one op at a time per replica, and the raw binding's
 * checks of the exchange. The native backend only (the JavaScript backend has no such path).
 */
import { createRequire } from 'module';
import { describe, expect, test } from 'vitest';

import { exchangeBytes, ExchangeStatus, KernelExchange } from '../lib/collective/kernel-exchange';
import { BatchNorm, createWorkerGroup, joinWorkerGroup } from '../lib/index';
import { packageRoot } from '../lib/loader';
import type { NativeBinding } from '../lib/native-backend';
import { cleanExit, runChild } from './helpers/child';
import { rng } from './helpers/random';
import { expectSameBits } from './helpers/reference';

interface CaseResult {
  name: string;
  errors?: string[];
  same: boolean;
  runningSame: boolean;
  worst: number;
  varError: number;
}

interface Outcome {
  code: string;
  message: string;
  runningKept: boolean;
}

describe('layers in worker threads, synchronized in the kernels', () => {
  test('the same bits as the split path on every replica, and one layer on the whole batch within tolerance', () => {
    const results = cleanExit<CaseResult[]>(runChild('kernel-exchange-workers.js', { args: ['compare'] }));
    expect(results).toHaveLength(7);
    for (const r of results) {
      expect(r, r.name).toMatchObject({ same: true, runningSame: true });
      expect(r.worst, `${r.name}: y and dx against one layer, relative to 1 + |value|`).toBeLessThan(2e-5);
      expect(r.varError, `${r.name}: running variance`).toBeLessThan(1e-5);
    }
  });

  test('a replica that never arrives: the others time out with the group broken, naming it, their running statistics kept', () => {
    const { seconds, outcomes } = cleanExit<{ seconds: number; outcomes: Outcome[] }>(runChild('kernel-exchange-workers.js', { args: ['fails', 'never'] }));
    expect(outcomes.map((o) => o.code)).toEqual(['ERR_BATCHNORM_COLLECTIVE_TIMEOUT', 'ERR_BATCHNORM_COLLECTIVE_TIMEOUT']);
    expect(outcomes.map((o) => o.runningKept)).toEqual([true, true]);
    // The replica that gave up names the missing one, and so does the one it woke.
    expect(outcomes.some((o) => /: rank 2 did not arrive within 500 ms/.test(o.message))).toBe(true);
    expect(outcomes.some((o) => /gave up waiting for rank 2 \(/.test(o.message))).toBe(true);
    expect(seconds).toBeLessThan(20); // the group's timeout is 0.5 s
  });

  test('a replica that arrives after the others gave up fails too, though every number of the round is there', () => {
    const { outcomes } = cleanExit<{ outcomes: Outcome[] }>(runChild('kernel-exchange-workers.js', { args: ['fails', 'late'] }));
    expect(outcomes.map((o) => o.code)).toEqual(['ERR_BATCHNORM_COLLECTIVE_TIMEOUT', 'ERR_BATCHNORM_COLLECTIVE_TIMEOUT', 'ERR_BATCHNORM_COLLECTIVE_TIMEOUT']);
    expect(outcomes.map((o) => o.runningKept)).toEqual([true, true, true]);
    expect(outcomes[2]!.message).toMatch(/rank 2 of 3.*: rank [01] gave up waiting for .* or this one, if it came after the timeout/);
  });

  test('a replica whose layer has other channels: every replica fails at once with a mismatch, their running statistics kept', () => {
    const { seconds, outcomes } = cleanExit<{ seconds: number; outcomes: Outcome[] }>(runChild('kernel-exchange-workers.js', { args: ['fails', 'mismatch'] }));
    expect(outcomes.map((o) => o.code)).toEqual(Array(3).fill('ERR_BATCHNORM_COLLECTIVE_MISMATCH'));
    expect(outcomes.map((o) => o.runningKept)).toEqual([true, true, true]);
    // The replicas that found the other op name both ops; one that saw the broken group first says who broke it.
    const named = /: rank (2 runs forwardTrain over 3 channels and rank [01] forwardTrain over 4|[01] runs forwardTrain over 4 channels and rank 2 forwardTrain over 3) channels; every replica must run/;
    expect(outcomes.some((o) => named.test(o.message))).toBe(true);
    for (const o of outcomes) expect(o.message).toMatch(new RegExp(`${named.source}|: rank [012] found the replicas running different ops`));
    expect(seconds).toBeLessThan(30); // the group's timeout is 60 s: none waited for it
  });

  test('abortWorkerGroup while replicas wait in the kernels: they fail at once, their running statistics kept', () => {
    const { outcomes } = cleanExit<{ outcomes: Outcome[] }>(runChild('kernel-exchange-workers.js', { args: ['fails', 'aborts'] }));
    for (const o of outcomes) expect(o).toMatchObject({ code: 'ERR_BATCHNORM_COLLECTIVE_ABORTED', message: expect.stringMatching(/aborted by abortWorkerGroup/), runningKept: true });
  });

  test('1 value per channel over all replicas: every replica refuses the step alike, and the group stays usable', () => {
    const replies = cleanExit<{ code: string; numBatchesTracked: number; runningMean: number[] }[]>(runChild('kernel-exchange-workers.js', { args: ['tooFew'] }));
    expect(replies.map((r) => r.code)).toEqual(['ERR_BATCHNORM_TOO_FEW_VALUES', 'ERR_BATCHNORM_TOO_FEW_VALUES']);
    expect(replies.map((r) => r.numBatchesTracked)).toEqual([1, 1]);
    expect(replies[1]!.runningMean).toEqual(replies[0]!.runningMean);
  });

  test('a thread on the JavaScript backend cannot join a group whose layers synchronize in the kernels', () => {
    const reply = cleanExit<{ backend: string; code: string }>(runChild('kernel-exchange-workers.js', { args: ['jsJoin'] }));
    expect(reply).toMatchObject({ backend: 'js', code: 'ERR_BATCHNORM_COLLECTIVE_MISMATCH' });
  });
});

describe('in this process', () => {
  const r = rng(41);

  /** A forward and backward of `layer`; the arrival counters of the group's first `channels`. */
  const step = (layer: BatchNorm, x: Float32Array, shape: number[]) => {
    const y = layer.forward(x, shape).slice();
    return { y, dx: layer.backward(r.normals(x.length)).slice() };
  };

  test('a layer with up to maxChannels channels synchronizes in the kernels (one round per pass), a wider one splits; both as the plain layer with one replica', () => {
    const group = createWorkerGroup(1, { maxChannels: 3 });
    const arrivals = new Int32Array(group.exchange!, 0, 3);
    const collective = joinWorkerGroup(group, 0);
    for (const C of [3, 4]) {
      const shape = [5, C, 7, 9];
      const x = r.normals(shape.reduce((p, d) => p * d, 1), 2, 3);
      const seed = r.int(0, 1000);
      const plain = new BatchNorm(C, { gammaInit: 'normal', seed });
      const synced = new BatchNorm(C, { gammaInit: 'normal', seed, collective });
      const before = Array.from(arrivals);
      const dy = r.normals(x.length);
      expectSameBits(synced.forward(x, shape), plain.forward(x, shape), `C ${C}: y`);
      expectSameBits(synced.backward(dy), plain.backward(dy), `C ${C}: dx`);
      expectSameBits(synced.runningVar!, plain.runningVar!, `C ${C}: runningVar`);
      expect(Array.from(arrivals, (a, c) => a - before[c]!), `C ${C}: rounds per channel`).toEqual(C <= 3 ? [2, 2, 2] : [0, 0, 0]);
    }
  });

  test('one synchronized op at a time per replica: a second layer on the same collective meanwhile is refused', async () => {
    const collective = joinWorkerGroup(createWorkerGroup(1), 0);
    const [a, b] = [new BatchNorm(2, { collective }), new BatchNorm(2, { collective })];
    const x = r.normals(2 * 300);
    const first = a.forwardAsync(x, [300, 2]);
    await expect(b.forwardAsync(x, [300, 2])).rejects.toMatchObject({ code: 'ERR_BATCHNORM_BUSY' });
    await first;
    step(b, x, [300, 2]); // free again
  });

  test('an op refused before the kernels does not count as begun: the replica left waiting names its rank', () => {
    const memory = new SharedArrayBuffer(exchangeBytes(2, 1));
    const named: number[][] = [];
    const fail = (_status: ExchangeStatus, _where: string, missing: number[]): never => {
      named.push(missing);
      throw new Error('the group failed');
    };
    const [rank0, rank1] = [0, 1].map((rank) => new KernelExchange(1, memory, new Int32Array(1), { rank, size: 2, timeoutMs: 100, timeoutCode: 1, mismatchCode: 3 }, fail));
    // Rank 0's op throws as the binding does when it refuses an argument, before any kernel ran.
    expect(() => rank0!.run(1, 'forward', () => { throw new TypeError('refused'); })).toThrow('refused');
    // Rank 1's op ends as the kernels end one whose wait timed out.
    expect(() => rank1!.run(1, 'forward', (views) => { views.report[0] = ExchangeStatus.TimedOut; })).toThrow('the group failed');
    expect(named).toEqual([[0]]);
  });

  test('maxChannels: an integer >= 1', () => {
    expect(() => createWorkerGroup(2, { maxChannels: 0 })).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_OPTION' }));
    expect(() => createWorkerGroup(2, { maxChannels: 1.5 })).toThrow(RangeError);
  });
});

describe('the raw binding checks an exchange', () => {
  const require = createRequire(import.meta.url);
  const binding = require('node-gyp-build')(packageRoot()) as NativeBinding;
  const f = (n: number) => new Float32Array(n);
  /** An exchange for C channels of a group of `size`, as lib/collective/kernel-exchange.ts lays it out. */
  const exchange = (C: number, size = 1, changes: object = {}) => ({
    slots: new Float64Array(new SharedArrayBuffer(8 * C * 2 * size * 4)),
    arrivals: new Int32Array(new SharedArrayBuffer(4 * C)),
    rounds: new Int32Array(C),
    broken: new Int32Array(new SharedArrayBuffer(4)),
    report: new Float64Array(6),
    rank: 0,
    size,
    timeoutMs: 1000,
    timeoutCode: 9,
    mismatchCode: 11,
    ...changes,
  });
  const train = (e: unknown, moments = false) =>
    binding.forwardTrain(f(8), 4, 2, 1, f(8), null, null, 1e-5, 0.1, null, null, true, f(2), f(2), 4, moments ? new Float64Array(2) : null, moments ? new Float64Array(2) : null, false, null, null, false, e as never);
  const back = (e: unknown) => binding.backward(f(8), f(8), 4, 2, 1, f(8), null, f(2), f(2), false, f(2), f(2), 8, null, null, null, null, null, null, false, e as never);

  test.each([
    { name: 'not an object', e: 3, type: TypeError },
    { name: 'slots too short', e: exchange(2, 1, { slots: new Float64Array(11) }), type: RangeError },
    { name: 'arrivals a Float64Array', e: exchange(2, 1, { arrivals: new Float64Array(2) }), type: TypeError },
    { name: 'rounds for fewer channels', e: exchange(2, 1, { rounds: new Int32Array(1) }), type: RangeError },
    { name: 'rank outside the group', e: exchange(2, 1, { rank: 1 }), type: RangeError },
    { name: 'timeoutMs 0', e: exchange(2, 1, { timeoutMs: 0 }), type: RangeError },
    { name: 'no mismatchCode', e: exchange(2, 1, { mismatchCode: undefined }), type: TypeError },
    { name: 'report too short', e: exchange(2, 1, { report: new Float64Array(3) }), type: RangeError },
    { name: 'no report', e: exchange(2, 1, { report: undefined }), type: TypeError },
  ])('$name', ({ e, type }) => {
    expect(() => train(e)).toThrow(type);
    expect(() => back(e)).toThrow(type);
  });

  test('with given moments, or with sums', () => {
    expect(() => train(exchange(2), true)).toThrow(RangeError);
    expect(() => binding.backward(f(8), f(8), 4, 2, 1, f(8), null, f(2), f(2), false, f(2), f(2), 8, new Float64Array(2), new Float64Array(2), null, null, null, null, false, exchange(2) as never)).toThrow(RangeError);
  });

  test('a getter on the exchange runs before any array is taken: one that detaches out leaves a detached out, refused', () => {
    const out = f(8);
    const e = exchange(2);
    Object.defineProperty(e, 'rank', {
      get: () => {
        structuredClone(out.buffer, { transfer: [out.buffer] });
        return 0;
      },
    });
    expect(() => binding.forwardTrain(f(8), 4, 2, 1, out, null, null, 1e-5, 0.1, null, null, true, f(2), f(2), 4, null, null, false, null, null, false, e as never)).toThrow(RangeError);
  });

  test("another replica's count that is not a count of values (NaN, 1e300) is refused as too few, never cast", () => {
    for (const count of [NaN, 1e300]) {
      const e = exchange(2, 2);
      e.arrivals.fill(1); // rank 1 has published both channels' round 0: [count, mean, m2, op]
      for (const c of [0, 1]) e.slots.set([count, 0, 1, 2 * 2], ((c * 2 + 0) * 2 + 1) * 4);
      train(e);
      expect(Array.from(e.report.subarray(0, 3)), `count ${count}`).toEqual([3, -1, 0]);
    }
  });

  test('a one-replica exchange runs: [status, channel, count, -, -, its op] reported', () => {
    const e = exchange(2);
    train(e);
    expect(Array.from(e.report)).toEqual([0, -1, 4, -1, 0, 2 * 2]); // forwardTrain over 2 channels
    expect(Array.from(e.rounds)).toEqual([1, 1]);
  });
});
