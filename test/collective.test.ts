/**
 * Collectives (SPEC section 8): worker groups with real worker threads and the IPC collective
 * with real child processes (test/child/collective-*.js): correct sums, bitwise the same on
 * every replica, under many rounds, sizes and lengths; a replica that throws, exits or never
 * arrives gives every other replica a clear error instead of a hang; synchronized layers in
 * workers. Then the pieces in this process: argument checks and the hub's ordering and failures.
 */
import { describe, expect, test } from 'vitest';

import {
  BatchNormCollectiveError,
  ReductionHub,
  RemoteCollective,
  createWorkerGroup,
  joinWorkerGroup,
  type HubReply,
} from '../lib/index';
import { cleanExit, runChild } from './helpers/child';
import { memoryGroup } from './helpers/replicas';

interface ErrorReport {
  code: string;
  message: string;
}

describe('worker groups, with worker threads', () => {
  test('stress: sizes 1 to 8, 200 rounds each, mixed sync and async replicas; the main thread stays responsive', () => {
    const results = cleanExit<{ size: number; agree: boolean; wrong: number; errors: string[]; ticksPerSecond: number }[]>(runChild('collective-workers.js', { args: ['stress', '200'] }));
    expect(results.map((r) => r.size)).toEqual([1, 2, 3, 5, 8]);
    for (const r of results) {
      expect(r, `size ${r.size}`).toMatchObject({ agree: true, wrong: 0, errors: [] });
      if (r.size > 1) expect(r.ticksPerSecond, `size ${r.size}: main thread timer ticks while it waits`).toBeGreaterThan(50);
    }
  });

  test.each([
    { how: 'throws', code: 'ERR_BATCHNORM_COLLECTIVE_TIMEOUT' },
    { how: 'never', code: 'ERR_BATCHNORM_COLLECTIVE_TIMEOUT' },
    { how: 'exits', code: 'ERR_BATCHNORM_COLLECTIVE_ABORTED' },
  ])('a replica that $how: the others fail with $code, naming it, instead of hanging', ({ how, code }) => {
    const { seconds, outcomes } = cleanExit<{ seconds: number; outcomes: ErrorReport[] }>(runChild('collective-workers.js', { args: ['fails', how] }));
    expect(outcomes).toHaveLength(2);
    for (const o of outcomes) {
      expect(o.code).toBe(code);
      expect(o.message).toMatch(how === 'exits' ? /aborted by abortWorkerGroup/ : /rank 2/);
    }
    expect(seconds).toBeLessThan(20); // the group's timeout is 0.8 s (60 s when aborted)
  });

  test('replicas that send different lengths all fail alike', () => {
    const { errors } = cleanExit<{ errors: ErrorReport[] }>(runChild('collective-workers.js', { args: ['mismatch'] }));
    expect(errors.map((e) => e.code)).toEqual(['ERR_BATCHNORM_COLLECTIVE_MISMATCH', 'ERR_BATCHNORM_COLLECTIVE_MISMATCH']);
  });

  test('synchronized BatchNorm layers in 3 workers (sync methods, one empty shard) equal one layer on the whole batch', () => {
    const r = cleanExit<{ errors: string[]; yError: number; dxError: number; runningSame: boolean; runningVarError: number; gradBetaError: number }>(runChild('collective-workers.js', { args: ['layer'] }));
    expect(r.errors).toEqual([]);
    expect(r.runningSame).toBe(true);
    expect(r.yError).toBeLessThan(2e-5 * 4); // |y| stays below 4 here
    expect(r.dxError).toBeLessThan(2e-5);
    expect(r.runningVarError).toBeLessThan(1e-5);
    expect(r.gradBetaError).toBeLessThan(1e-4);
  });
});

describe('the IPC collective, with child processes', () => {
  test('4 processes, 200 rounds: exact rank-order sums (NaN, Infinity, -0 included), the same on every replica', () => {
    expect(cleanExit(runChild('collective-ipc.js', { args: ['sums', '4', '200'] }))).toMatchObject({ agree: true, wrong: 0, errors: [] });
  });

  test('a process that exits mid-step: the others fail with an error naming it', () => {
    const { errors } = cleanExit<{ errors: ErrorReport[] }>(runChild('collective-ipc.js', { args: ['dies', '3'] }));
    expect(errors).toHaveLength(2);
    for (const e of errors) {
      expect(e.code).toBe('ERR_BATCHNORM_COLLECTIVE_ABORTED');
      expect(e.message).toContain('rank 1 exited (code 7)');
    }
  });
});

describe('worker group arguments', () => {
  const check = (f: () => unknown, type: typeof TypeError | typeof RangeError, code: string) => {
    let thrown: unknown;
    try {
      f();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(type);
    expect((thrown as { code: string }).code).toBe(code);
  };

  test.each([
    { name: 'size 0', f: () => createWorkerGroup(0), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'size a string', f: () => createWorkerGroup('2' as never), type: TypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
    { name: 'capacity 0', f: () => createWorkerGroup(2, { capacity: 0 }), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'timeout 0', f: () => createWorkerGroup(2, { timeoutMs: 0 }), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'a group that is not one', f: () => joinWorkerGroup({ size: 2 } as never, 0), type: TypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
    { name: 'a rank outside the group', f: () => joinWorkerGroup(createWorkerGroup(2), 2), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'async not a boolean', f: () => joinWorkerGroup(createWorkerGroup(2), 0, { async: 1 as never }), type: TypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
    { name: 'an unknown group option (timeout for timeoutMs)', f: () => createWorkerGroup(2, { timeout: 5 } as never), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'an unknown join option (sync)', f: () => joinWorkerGroup(createWorkerGroup(2), 0, { sync: false } as never), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
  ])('rejects $name', ({ f, type, code }) => check(f, type, code));

  test('a rank joins once', () => {
    const group = createWorkerGroup(2);
    joinWorkerGroup(group, 1);
    check(() => joinWorkerGroup(group, 1), RangeError, 'ERR_BATCHNORM_INVALID_OPTION');
  });

  test('data: a Float64Array within the capacity; a rejected call does not count as a round', () => {
    const collective = joinWorkerGroup(createWorkerGroup(1, { capacity: 4 }), 0);
    check(() => collective.allReduceSum(new Float32Array(2) as never), TypeError, 'ERR_BATCHNORM_INVALID_TYPE');
    check(() => collective.allReduceSum(new Float64Array(5)), RangeError, 'ERR_BATCHNORM_LENGTH_MISMATCH');
    const data = Float64Array.of(1, -0, NaN, 4);
    collective.allReduceSum(data);
    expect(Array.from(data)).toEqual([1, -0, NaN, 4]);
  });

  test('an aborted group fails every later call', async () => {
    const collective = joinWorkerGroup(createWorkerGroup(1), 0, { async: true });
    collective.abort();
    await expect(collective.allReduceSum(new Float64Array(1))).rejects.toMatchObject({ code: 'ERR_BATCHNORM_COLLECTIVE_ABORTED' });
  });

  test('after a timeout, a later call names the replica that was missing, not itself', async () => {
    const collective = joinWorkerGroup(createWorkerGroup(2, { timeoutMs: 100 }), 0, { async: true }); // rank 1 never calls
    await expect(collective.allReduceSum(new Float64Array(1))).rejects.toThrow(/: rank 1 did not arrive within 100 ms/);
    await expect(collective.allReduceSum(new Float64Array(1))).rejects.toThrow(/\(rank 0 of 2, round 2\): rank 0 gave up waiting for rank 1 \(/);
  });
});

describe('the hub and its replicas (the halves of other transports)', () => {
  test('sums in rank order whatever the arrival order, and sends every replica the same array', () => {
    const replies: HubReply[][] = [[], [], []];
    const hub = new ReductionHub(3, (rank, reply) => replies[rank]!.push(reply));
    const parts = [Float64Array.of(1e16), Float64Array.of(1), Float64Array.of(-1e16)];
    for (const rank of [2, 0, 1]) hub.contribute(rank, 1, parts[rank]!);
    const sums = replies.map((r) => (r[0] as { data: Float64Array }).data);
    expect(sums[0]![0]).toBe(1e16 + 1 - 1e16); // ((p0 + p1) + p2), not ((p2 + p0) + p1) = 1
    expect(sums[1]).toBe(sums[0]);
    expect(sums[2]).toBe(sums[0]);
  });

  test('a round that does not complete in time fails every replica, naming the missing ranks', async () => {
    const replicas: RemoteCollective[] = [];
    const hub = new ReductionHub(3, (rank, reply) => replicas[rank]!.deliver(reply), { timeoutMs: 50 });
    for (let rank = 0; rank < 3; rank++) replicas.push(new RemoteCollective(rank, 3, (round, data) => hub.contribute(rank, round, data)));
    const pending = [0, 1].map((k) => replicas[k]!.allReduceSum(new Float64Array(2)));
    await Promise.all(pending.map((p) => expect(p).rejects.toThrow(/rank 2 did not send within 50 ms/)));
    await expect(replicas[2]!.allReduceSum(new Float64Array(2))).rejects.toBeInstanceOf(BatchNormCollectiveError);
  });

  test('a replica that leaves while a round needs it breaks the group', async () => {
    const a = new Float64Array(1);
    const replicas: RemoteCollective[] = [];
    const hub = new ReductionHub(2, (rank, reply) => replicas[rank]!.deliver(reply));
    for (let rank = 0; rank < 2; rank++) replicas.push(new RemoteCollective(rank, 2, (round, data) => hub.contribute(rank, round, data)));
    const pending = replicas[0]!.allReduceSum(a);
    hub.leave(1, 'closed its connection');
    await expect(pending).rejects.toMatchObject({ code: 'ERR_BATCHNORM_COLLECTIVE_ABORTED', message: expect.stringContaining('rank 1 closed its connection') });
  });

  test('in memory: 3 replicas over 50 rounds get identical sums', async () => {
    const group = memoryGroup(3);
    for (let round = 0; round < 50; round++) {
      const data = group.map((c) => Float64Array.from({ length: 1 + (round % 7) }, (_, i) => Math.sin(round + i + c.rank)));
      await Promise.all(group.map((c, k) => c.allReduceSum(data[k]!)));
      expect(data[1]).toEqual(data[0]);
      expect(data[2]).toEqual(data[0]);
    }
  });
});
