/**
 * The layer's `collective` option (SPEC section 8): replicas of a layer, each on its shard of
 * a batch, behave as one layer on the whole batch (y, dx, running statistics; the replicas'
 * gradients add up to the whole batch's), hold bitwise the same running statistics, and keep
 * their own parameter gradients. Replicas run in this thread through an in-memory collective
 * (forwardAsync / backwardAsync); test/collective.test.ts runs them in worker threads with the
 * synchronous methods. Runs on both backends (vitest.config.mts).
 */
import { describe, expect, test, vi } from 'vitest';

import { BatchNorm, BatchNormCollectiveError, createWorkerGroup, joinWorkerGroup, RemoteCollective, type BatchNormOptions, type Collective } from '../lib/index';
import { rng } from './helpers/random';
import { expectElementwise, expectRelative, expectSameBits } from './helpers/reference';
import { concat, memoryGroup, shards } from './helpers/replicas';

const r = rng(21);

/** Copies the single layer's parameters into a replica, as a data-parallel job starts. */
function replicaOf(single: BatchNorm, numFeatures: number, options: BatchNormOptions) {
  const layer = new BatchNorm(numFeatures, options);
  layer.loadStateDict(single.stateDict());
  return layer;
}

/** |sum of the replicas' gradients - the whole batch's| within SPEC's dgamma/dbeta tolerance. */
function expectGradientSum(parts: Float32Array[], whole: Float32Array, what: string) {
  for (let c = 0; c < whole.length; c++) {
    const sum = parts.reduce((s, p) => s + p[c]!, 0);
    const scale = parts.reduce((s, p) => s + Math.abs(p[c]!), 0);
    if (!(Math.abs(sum - whole[c]!) <= 1e-5 * scale + 1e-6)) expect.fail(`${what}[${c}]: replicas add up to ${sum}, the whole batch has ${whole[c]}`);
  }
}

const CASES = [
  { name: 'NCHW, 3 replicas', shape: [10, 4, 6, 6], rows: [3, 7, 0], options: {} },
  { name: 'NCHW, 5 replicas with renorm', shape: [12, 3, 8, 9], rows: [2, 2, 5, 0, 3], options: { renorm: { rmax: 1.5, dmax: 0.5 } } },
  { name: 'NHWC (Keras conventions), 2 replicas', shape: [9, 5, 5, 6], rows: [4, 5], options: { axis: -1, momentum: 0.01, unbiased: false, eps: 1e-3 } },
  { name: '[N, C], 4 replicas, cumulative average', shape: [21, 8], rows: [1, 6, 0, 14], options: { momentum: null } },
];

describe.each(CASES)('$name: replicas behave as one layer on the whole batch', ({ shape, rows, options }) => {
  const n = shape.reduce((p, d) => p * d, 1);
  const axis = (options as { axis?: number }).axis ?? 1;
  const C = shape[axis < 0 ? axis + shape.length : axis]!;

  test('forwardAsync, backwardAsync over 3 steps', async () => {
    const single = new BatchNorm(C, { ...options, gammaInit: 'normal', seed: 3 });
    single.beta!.set(r.normals(C));
    const group = memoryGroup(rows.length);
    const replicas = group.map((collective) => replicaOf(single, C, { ...options, collective }));
    for (let step = 0; step < 3; step++) {
      const x = r.normals(n, step, 2);
      const dy = r.normals(n);
      const parts = shards(x, dy, shape, rows);
      const y = await Promise.all(replicas.map((layer, k) => layer.forwardAsync(parts[k]!.x, parts[k]!.shape)));
      const dx = await Promise.all(replicas.map((layer, k) => layer.backwardAsync(parts[k]!.dy)));
      expectElementwise(concat(y), Float64Array.from(single.forward(x, shape)), `step ${step} y`);
      expectElementwise(concat(dx), Float64Array.from(single.backward(dy)), `step ${step} dx`);
    }
    for (const layer of replicas) {
      expectRelative(layer.runningMean!, single.runningMean!, 'runningMean', single.runningVar!.map(Math.sqrt));
      expectRelative(layer.runningVar!, single.runningVar!, 'runningVar');
      expect(layer.numBatchesTracked).toBe(single.numBatchesTracked);
      expectSameBits(layer.runningMean!, replicas[0]!.runningMean!, 'runningMean on every replica');
      expectSameBits(layer.runningVar!, replicas[0]!.runningVar!, 'runningVar on every replica');
    }
    // each replica's own gradients; together, the whole batch's
    expectGradientSum(replicas.map((l) => l.gradGamma!), single.gradGamma!, 'gradGamma');
    expectGradientSum(replicas.map((l) => l.gradBeta!), single.gradBeta!, 'gradBeta');
    const empty = rows.indexOf(0);
    if (empty >= 0) expect(Array.from(replicas[empty]!.gradBeta!)).toEqual(new Array(C).fill(0));
  });
});

describe('one replica is the unsynchronized layer', () => {
  test('a one-replica worker group gives the same bits, with the sync methods', () => {
    const shape = [6, 3, 10, 10];
    const x = r.normals(1800, 1, 3);
    const dy = r.normals(1800);
    const plain = new BatchNorm(3);
    const synced = new BatchNorm(3, { collective: joinWorkerGroup(createWorkerGroup(1), 0) });
    for (let step = 0; step < 2; step++) {
      expectSameBits(synced.forward(x, shape), plain.forward(x, shape), 'y');
      expectSameBits(synced.backward(dy), plain.backward(dy), 'dx');
    }
    expectSameBits(synced.runningVar!, plain.runningVar!, 'runningVar');
    expectSameBits(synced.gradGamma!, plain.gradGamma!, 'gradGamma');
  });
});

describe('how the collective is used', () => {
  const x = r.normals(24, 0, 1);

  test('a synchronous call with an asynchronous collective says to use the async methods', () => {
    const layer = new BatchNorm(3, { collective: memoryGroup(1)[0] });
    let thrown: unknown;
    try {
      layer.forward(x, [8, 3]);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(BatchNormCollectiveError);
    expect((thrown as BatchNormCollectiveError).code).toBe('ERR_BATCHNORM_COLLECTIVE_ASYNC');
    expect((thrown as Error).message).toContain('forwardAsync');
  });

  test('the same with a worker group joined { async: true }, whose layers synchronize inside the kernels on the native backend', async () => {
    const layer = new BatchNorm(3, { collective: joinWorkerGroup(createWorkerGroup(1), 0, { async: true }) });
    expect(() => layer.forward(x, [8, 3])).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_COLLECTIVE_ASYNC' }));
    expect(layer.numBatchesTracked).toBe(0);
    await layer.forwardAsync(x, [8, 3]);
    expect(() => layer.backward(x)).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_COLLECTIVE_ASYNC' }));
    await layer.backwardAsync(x);
  });

  test('a collective that declares itself async is refused before its round begins, on the split path (renorm)', () => {
    const send = vi.fn();
    const layer = new BatchNorm(3, { collective: new RemoteCollective(0, 2, send), renorm: { rmax: 3, dmax: 5 } });
    expect(() => layer.forward(x, [8, 3])).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_COLLECTIVE_ASYNC' }));
    expect(send).not.toHaveBeenCalled(); // the other replicas saw no round of it
    expect(layer.numBatchesTracked).toBe(0);
  });

  test('a collective whose async flag is not a boolean is refused', () => {
    const collective = { rank: 0, size: 1, async: 'yes', allReduceSum: () => {} };
    expect(() => new BatchNorm(3, { collective: collective as never })).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_TYPE', message: expect.stringContaining('opts.collective.async') }));
  });

  test('1 value per channel over all replicas: the same error on either path and backend, naming x', () => {
    const layer = new BatchNorm(3, { collective: joinWorkerGroup(createWorkerGroup(1), 0) });
    expect(() => layer.forward(x.subarray(0, 3), [1, 3])).toThrow(
      expect.objectContaining({ code: 'ERR_BATCHNORM_TOO_FEW_VALUES', message: 'Expected more than 1 value per channel when training for x but received 1 value(s) per channel over the 1 replicas' }),
    );
    expect(layer.numBatchesTracked).toBe(0);
  });

  test('eval mode never synchronizes (as PyTorch), even with batch statistics', () => {
    const refuses: Collective = { rank: 0, size: 2, allReduceSum: () => expect.fail('eval mode called allReduceSum') };
    const layer = new BatchNorm(3, { collective: refuses, trackRunningStats: false }).eval();
    layer.forward(x, [8, 3]);
    layer.backward(x);
  });

  test('the collective travels with options() and fromKeras', () => {
    const collective = memoryGroup(2)[1]!;
    expect(new BatchNorm(3, { collective }).options().collective).toBe(collective);
    expect(BatchNorm.fromKeras(3, { collective }).collective).toBe(collective);
  });

  test.each([
    { name: 'not an object', collective: 5, type: TypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
    { name: 'without allReduceSum', collective: { rank: 0, size: 1 }, type: TypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
    { name: 'a rank outside the group', collective: { rank: 2, size: 2, allReduceSum() {} }, type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'with virtualBatchSize', collective: { rank: 0, size: 1, allReduceSum() {} }, virtualBatchSize: 4, type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
  ])('rejects a collective $name', ({ collective, virtualBatchSize, type, code }) => {
    let thrown: unknown;
    try {
      new BatchNorm(3, { collective: collective as Collective, virtualBatchSize });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(type);
    expect((thrown as { code: string }).code).toBe(code);
  });
});
