/**
 * A replica's side of a star-shaped collective (hub.ts): an AsyncCollective that sends each
 * allReduceSum's data away and resolves when the hub's reply for that round comes back. The
 * transport is two functions: `send(round, data)` here, and a call of `deliver(reply)` for each
 * reply (or `fail` when the connection is lost). ipc.ts wires it to process.send; README ("Other
 * transports") shows gRPC and ZeroMQ.
 */
import { BatchNormCollectiveError, type BatchNormErrorCode } from '../errors';
import { DEFAULT_TIMEOUT_MS, reduceData, type AsyncCollective } from './collective';
import type { HubError, HubReply } from './hub';

interface Waiting {
  data: Float64Array;
  resolve(): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export class RemoteCollective implements AsyncCollective {
  readonly #waiting = new Map<number, Waiting>();
  #round = 0;
  #broken: HubError | null = null;
  readonly #timeoutMs: number;

  /**
   * @param send hands one round's data to the transport (a copy: it may keep it)
   * @param options.timeoutMs how long to wait for a reply before failing (default 30000)
   */
  constructor(
    readonly rank: number,
    readonly size: number,
    private readonly send: (round: number, data: Float64Array) => void,
    options: { timeoutMs?: number } = {},
  ) {
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  allReduceSum(data: Float64Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const checked = reduceData(data, Infinity);
      if (this.#broken) throw this.#error(this.#broken);
      const round = ++this.#round;
      const timer = setTimeout(
        () => this.fail('ERR_BATCHNORM_COLLECTIVE_TIMEOUT', `no sums for round ${round} within ${this.#timeoutMs} ms`),
        Math.min(this.#timeoutMs, 2 ** 31 - 1),
      );
      this.#waiting.set(round, { data: checked, resolve, reject, timer });
      this.send(round, checked.slice());
    });
  }

  /** A reply from the hub. */
  deliver(reply: HubReply): void {
    if ('error' in reply) return this.fail(reply.error.code, reply.error.message);
    this.#settle(reply.round, reply);
  }

  /** The group broke or the transport is lost: every waiting and later call fails with this. */
  fail(code: BatchNormErrorCode, message: string): void {
    this.#broken ??= { code, message };
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

  #error(e: HubError): BatchNormCollectiveError {
    return new BatchNormCollectiveError(e.code, `allReduceSum (rank ${this.rank} of ${this.size}): ${e.message}`);
  }
}
