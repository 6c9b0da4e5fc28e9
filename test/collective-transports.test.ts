/**
 * The transports' halves (lib/collective/hub.ts, remote.ts) and the IPC collective built on them
 * (ipc.ts): constructor arguments, one call at a time per replica, a transport whose send throws,
 * a hub failed by its transport, and with real child processes (test/child/collective-ipc.js) a
 * child that joins under a rank or size other than its place, and close() while a call waits.
 */
import { afterEach, describe, expect, test, vi } from 'vitest';

import { BatchNormCollectiveError, BatchNormStateError, joinIpcGroup, ReductionHub, RemoteCollective, serveIpcGroup, type HubReply } from '../lib/index';
import { cleanExit, runChild } from './helpers/child';

interface ErrorReport {
  code: string;
  message: string;
}

const send = () => {};

describe('constructor arguments (SPEC section 4)', () => {
  test.each([
    { name: 'a replica of size 0', f: () => new RemoteCollective(0, 0, send), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'a replica of size 2.5', f: () => new RemoteCollective(0, 2.5, send), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'a replica size a string', f: () => new RemoteCollective(0, '2' as never, send), type: TypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
    { name: 'rank 5 of size 2', f: () => new RemoteCollective(5, 2, send), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'rank -1', f: () => new RemoteCollective(-1, 2, send), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'a replica send that is not a function', f: () => new RemoteCollective(0, 2, 'nope' as never), type: TypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
    { name: 'a replica timeoutMs -5', f: () => new RemoteCollective(0, 2, send, { timeoutMs: -5 }), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: "a replica timeoutMs 'x'", f: () => new RemoteCollective(0, 2, send, { timeoutMs: 'x' as never }), type: TypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
    { name: 'replica options that are not an object', f: () => new RemoteCollective(0, 2, send, 5 as never), type: TypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
    { name: 'a hub of size 0', f: () => new ReductionHub(0, send), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'a hub of size 2.5', f: () => new ReductionHub(2.5, send), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'a hub send that is not a function', f: () => new ReductionHub(2, null as never), type: TypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
    { name: 'a hub timeoutMs 0', f: () => new ReductionHub(2, send, { timeoutMs: 0 }), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'serveIpcGroup with no children', f: () => serveIpcGroup([]), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'a replica option timeout (for timeoutMs)', f: () => new RemoteCollective(0, 2, send, { timeout: 5 } as never), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'a hub option timeout (for timeoutMs)', f: () => new ReductionHub(2, send, { timeout: 5 } as never), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'joinIpcGroup option timeout (for timeoutMs)', f: () => joinIpcGroup({ rank: 0, size: 2, timeout: 5 } as never), type: RangeError, code: 'ERR_BATCHNORM_INVALID_OPTION' },
    { name: 'serveIpcGroup children not an array', f: () => serveIpcGroup('kids' as never), type: TypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
  ])('rejects $name', ({ f, type, code }) => {
    expect(f).toThrow(type);
    expect(f).toThrow(expect.objectContaining({ code, message: expect.stringMatching(/^Expected .* for .* but received /) }));
  });

  test('a valid replica and hub keep their rank and size', () => {
    expect(new RemoteCollective(1, 2, send, { timeoutMs: Infinity })).toMatchObject({ rank: 1, size: 2 });
    expect(new ReductionHub(3, send).size).toBe(3);
  });
});

describe('a replica: one call at a time; a transport that throws', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test('a second call while one waits is refused (ERR_BATCHNORM_BUSY) and takes no round; the first completes', async () => {
    const sent: number[] = [];
    const replica = new RemoteCollective(0, 1, (round) => sent.push(round));
    const data = Float64Array.of(1);
    const first = replica.allReduceSum(data);
    const second = replica.allReduceSum(Float64Array.of(2));
    await expect(second).rejects.toBeInstanceOf(BatchNormStateError);
    await expect(second).rejects.toMatchObject({ code: 'ERR_BATCHNORM_BUSY' });
    replica.deliver({ round: 1, data: Float64Array.of(5) });
    await first;
    expect(Array.from(data)).toEqual([5]);
    const next = replica.allReduceSum(Float64Array.of(3));
    replica.deliver({ round: 2, data: Float64Array.of(7) });
    await next;
    expect(sent).toEqual([1, 2]);
  });

  test('a send that throws fails the call at once (ERR_BATCHNORM_COLLECTIVE_ABORTED, the error as cause), leaves no timer, and breaks the replica', async () => {
    vi.useFakeTimers();
    const lost = new Error('socket closed');
    let sends = 0;
    const replica = new RemoteCollective(0, 2, () => {
      if (sends++ === 0) throw lost;
    });
    const error = await replica.allReduceSum(new Float64Array(2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchNormCollectiveError);
    expect(error).toMatchObject({ code: 'ERR_BATCHNORM_COLLECTIVE_ABORTED', message: expect.stringContaining('socket closed'), cause: lost });
    expect(vi.getTimerCount()).toBe(0);
    // Rounds are matched by count, so a replica that skipped one cannot take part again.
    await expect(replica.allReduceSum(new Float64Array(2))).rejects.toMatchObject({ code: 'ERR_BATCHNORM_COLLECTIVE_ABORTED', cause: lost });
    expect(sends).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  test("a hub failed by its transport fails every replica's waiting and later calls with that code", async () => {
    const replicas: RemoteCollective[] = [];
    const hub = new ReductionHub(2, (rank, reply: HubReply) => replicas[rank]!.deliver(reply));
    for (let rank = 0; rank < 2; rank++) replicas.push(new RemoteCollective(rank, 2, (round, data) => hub.contribute(rank, round, data)));
    const waiting = replicas[0]!.allReduceSum(new Float64Array(1));
    hub.fail('ERR_BATCHNORM_COLLECTIVE_MISMATCH', 'rank 1 joined another group');
    const mismatch = { code: 'ERR_BATCHNORM_COLLECTIVE_MISMATCH', message: expect.stringContaining('rank 1 joined another group') };
    await expect(waiting).rejects.toMatchObject(mismatch);
    await expect(replicas[1]!.allReduceSum(new Float64Array(1))).rejects.toMatchObject(mismatch);
  });
});

describe('the IPC collective, with child processes', () => {
  test.each([
    { name: 'two children join as rank 1', claims: '1/3,1/3,2/3', culprit: 'the child at index 0 of serveIpcGroup\'s 3 children joined as rank 1 of 3' },
    { name: 'a child joins a group of another size', claims: '0/3,1/3,2/4', culprit: 'the child at index 2 of serveIpcGroup\'s 3 children joined as rank 2 of 4' },
  ])('$name: every replica fails (ERR_BATCHNORM_COLLECTIVE_MISMATCH), none gets sums', ({ claims, culprit }) => {
    const { wrong, errors } = cleanExit<{ wrong: number; errors: ErrorReport[] }>(runChild('collective-ipc.js', { args: ['claims', claims] }));
    expect(wrong).toBe(0);
    expect(errors).toHaveLength(3);
    for (const e of errors) expect(e).toMatchObject({ code: 'ERR_BATCHNORM_COLLECTIVE_MISMATCH', message: expect.stringContaining(culprit) });
  });

  test('close() while a call waits fails the call at once (ERR_BATCHNORM_COLLECTIVE_ABORTED) and lets the process exit', () => {
    // Timeouts of 10 minutes in the child: without close() failing the call, it would outlive runChild's limit.
    const { errors } = cleanExit<{ errors: ErrorReport[] }>(runChild('collective-ipc.js', { args: ['close', '2'], timeoutMs: 50_000 }));
    expect(errors).toEqual([{ code: 'ERR_BATCHNORM_COLLECTIVE_ABORTED', message: 'allReduceSum (rank 0 of 2): the collective was closed' }]);
  });
});
