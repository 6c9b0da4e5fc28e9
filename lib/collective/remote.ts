/**
 * A replica's side of a star-shaped collective (hub.ts): an AsyncCollective that sends each
 * allReduceSum's data away and resolves when the hub's reply for that round comes back. The
 * transport is two functions: `send(round, data)` here, and a call of `deliver(reply)` for each
 * reply (or `fail` when the connection is lost). ipc.ts wires it to process.send; README ("Other
 * transports") shows gRPC and ZeroMQ.
 */
import { BatchNormCollectiveError, BatchNormStateError, describe, type BatchNormErrorCode } from '../errors';
import { integerAtLeast, optionsObject } from '../layer/checks';
import { callback, DEFAULT_TIMEOUT_MS, rankIn, reduceData, timeoutMs, type AsyncCollective } from './collective';
import type { HubError, HubReply } from './hub';

/** Why the collective broke; `cause`: the transport's own error, when one was thrown. */
type Broken = HubError & { cause?: unknown };

interface Waiting {
  data: Float64Array;
  resolve(): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export class RemoteCollective implements AsyncCollective {
  readonly rank: number;
  readonly size: number;
  readonly async = true;
  readonly #send: (round: number, data: Float64Array) => void;
  readonly #waiting = new Map<number, Waiting>();
  #round = 0;
  #broken: Broken | null = null;
  readonly #timeoutMs: number;

  /**
   * @param send hands one round's data to the transport (a copy: it may keep it); if it throws,
   *   the transport is taken as lost: the call and every later one fail
   * @param options.timeoutMs how long to wait for a reply before failing (default 30000)
   */
  constructor(rank: number, size: number, send: (round: number, data: Float64Array) => void, options?: { timeoutMs?: number }) {
    this.size = integerAtLeast(size, 'size', 1);
    this.rank = rankIn(rank, this.size, 'rank');
    this.#send = callback(send, 'send');
    this.#timeoutMs = timeoutMs(optionsObject(options, 'opts', ['timeoutMs']).timeoutMs, 'opts.timeoutMs', DEFAULT_TIMEOUT_MS);
  }

  /** Sums `data` with the other replicas' (one call at a time: rounds are matched by count). */
  allReduceSum(data: Float64Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const checked = reduceData(data, Infinity);
      if (this.#waiting.size > 0) {
        throw new BatchNormStateError('ERR_BATCHNORM_BUSY', `allReduceSum (rank ${this.rank} of ${this.size}): one call at a time per replica, and one is still waiting`);
      }
      if (this.#broken) throw this.#error(this.#broken);
      const round = ++this.#round;
      const timer = setTimeout(
        () => this.fail('ERR_BATCHNORM_COLLECTIVE_TIMEOUT', `no sums for round ${round} within ${this.#timeoutMs} ms`),
        Math.min(this.#timeoutMs, 2 ** 31 - 1),
      );
      this.#waiting.set(round, { data: checked, resolve, reject, timer });
      this.#sendRound(round, checked);
    });
  }

  /** Sends a round; a transport that throws is lost, as when it reports `fail` (its error is the cause). */
  #sendRound(round: number, data: Float64Array): void {
    try {
      this.#send(round, data.slice());
    } catch (e) {
      const why = e instanceof Error ? e.message : describe(e);
      this.#breakWith({ code: 'ERR_BATCHNORM_COLLECTIVE_ABORTED', message: `the transport failed to send round ${round}: ${why}`, cause: e });
    }
  }

  /** A reply from the hub. */
  deliver(reply: HubReply): void {
    if ('error' in reply) return this.fail(reply.error.code, reply.error.message);
    this.#settle(reply.round, reply);
  }

  /** The group broke or the transport is lost: every waiting and later call fails with this. */
  fail(code: BatchNormErrorCode, message: string): void {
    this.#breakWith({ code, message });
  }

  /** The first reason wins; every waiting round fails with it (its timer cleared). */
  #breakWith(broken: Broken): void {
    this.#broken ??= broken;
    for (const round of [...this.#waiting.keys()]) this.#settle(round, { round, error: this.#broken });
  }

  #settle(round: number, reply: HubReply): void {
    const waiting = this.#waiting.get(round);
    if (!waiting) return; // a reply after this round failed
    this.#waiting.delete(round);
    clearTimeout(waiting.timer);
    if ('error' in reply) return waiting.reject(this.#error(reply.error));
    if (reply.data.length !== waiting.data.length) {
      return waiting.reject(this.#error({ code: 'ERR_BATCHNORM_COLLECTIVE_MISMATCH', message: `round ${round}: sent ${waiting.data.length} numbers, received ${reply.data.length}` }));
    }
    waiting.data.set(reply.data);
    waiting.resolve();
  }

  #error(e: Broken): BatchNormCollectiveError {
    const error = new BatchNormCollectiveError(e.code, `allReduceSum (rank ${this.rank} of ${this.size}): ${e.message}`);
    if ('cause' in e) Object.defineProperty(error, 'cause', { value: e.cause, writable: true, configurable: true }); // as `new Error(m, { cause })` sets it
    return error;
  }
}
