/**
 * The transport-neutral centre of a star-shaped collective. A hub receives every replica's
 * contribution to a round, adds them in rank order once all are in (so the sums do not depend
 * on arrival order), and sends the very same sums to every replica. The IPC adapter (ipc.ts)
 * runs one in the parent process; a gRPC or ZeroMQ server runs one the same way, calling
 * `contribute` for each message and `leave` when a replica's connection ends (README, "Other
 * transports"). Its replicas' side is remote.ts.
 *
 * It fails rather than hangs: a round that is not complete within `timeoutMs` of its first
 * contribution, a replica that leaves while a round needs it, or contributions of different
 * lengths break the group, and every replica gets the error; so does the transport's own
 * `fail` (ipc.ts calls it for a child that joined under another rank).
 */
import type { BatchNormErrorCode } from '../errors';
import { integerAtLeast, optionsObject } from '../layer/checks';
import { callback, DEFAULT_TIMEOUT_MS, ranksOf, sumInRankOrder, timeoutMs } from './collective';

/** A hub's answer to one round: the sums, or why the group broke. */
export type HubReply = { round: number; data: Float64Array } | { round: number; error: HubError };

export interface HubError {
  code: BatchNormErrorCode;
  message: string;
}

interface PendingRound {
  parts: (Float64Array | undefined)[];
  received: number;
  timer: ReturnType<typeof setTimeout>;
}

export class ReductionHub {
  readonly size: number;
  readonly #send: (rank: number, reply: HubReply) => void;
  readonly #rounds = new Map<number, PendingRound>();
  readonly #left = new Map<number, string>();
  #broken: HubError | null = null;
  readonly #timeoutMs: number;

  /**
   * @param size the number of replicas (ranks 0 .. size - 1)
   * @param send delivers a reply to one replica
   * @param options.timeoutMs how long a round may take from its first contribution (default 30000)
   */
  constructor(size: number, send: (rank: number, reply: HubReply) => void, options?: { timeoutMs?: number }) {
    this.size = integerAtLeast(size, 'size', 1);
    this.#send = callback(send, 'send');
    this.#timeoutMs = timeoutMs(optionsObject(options, 'opts', ['timeoutMs']).timeoutMs, 'opts.timeoutMs', DEFAULT_TIMEOUT_MS);
  }

  /** Replica `rank`'s data for `round` (1, 2, ...: its count of allReduceSum calls). */
  contribute(rank: number, round: number, data: Float64Array): void {
    if (this.#broken) return this.#send(rank, { round, error: this.#broken });
    if (!(Number.isInteger(rank) && rank >= 0 && rank < this.size) || !(Number.isSafeInteger(round) && round >= 1)) {
      return this.fail('ERR_BATCHNORM_COLLECTIVE_MISMATCH', `a replica sent a contribution for rank ${rank}, round ${round}, outside this group of ${this.size}`);
    }
    const pending = this.#round(round);
    if (pending.parts[rank]) return this.fail('ERR_BATCHNORM_COLLECTIVE_MISMATCH', `rank ${rank} sent round ${round} twice`);
    const gone = [...this.#left.keys()];
    if (gone.length > 0) return this.fail('ERR_BATCHNORM_COLLECTIVE_ABORTED', `round ${round} cannot complete: ${this.#describeLeft(gone)}`);
    pending.parts[rank] = data;
    if (++pending.received < this.size) return;
    clearTimeout(pending.timer);
    this.#rounds.delete(round);
    const lengths = pending.parts.map((p) => p!.length);
    const other = lengths.findIndex((n) => n !== lengths[0]);
    if (other >= 0) {
      return this.fail('ERR_BATCHNORM_COLLECTIVE_MISMATCH', `round ${round}: rank 0 sent ${lengths[0]} numbers and rank ${other} ${lengths[other]}; every replica must send as many`);
    }
    const sums = new Float64Array(lengths[0]!);
    sumInRankOrder(pending.parts as Float64Array[], sums);
    for (let k = 0; k < this.size; k++) this.#send(k, { round, data: sums });
  }

  /** Replica `rank` is gone (its process exited, its connection closed): `why` says how. */
  leave(rank: number, why: string): void {
    this.#left.set(rank, why);
    if (this.#rounds.size > 0) this.fail('ERR_BATCHNORM_COLLECTIVE_ABORTED', `a round cannot complete: ${this.#describeLeft([rank])}`);
  }

  /** Stops the hub's timers (the replicas are done). */
  close(): void {
    for (const pending of this.#rounds.values()) clearTimeout(pending.timer);
    this.#rounds.clear();
  }

  #round(round: number): PendingRound {
    let pending = this.#rounds.get(round);
    if (!pending) {
      const timer = setTimeout(() => this.#expire(round), Math.min(this.#timeoutMs, 2 ** 31 - 1));
      pending = { parts: new Array(this.size), received: 0, timer };
      this.#rounds.set(round, pending);
    }
    return pending;
  }

  #expire(round: number): void {
    const pending = this.#rounds.get(round);
    if (!pending) return;
    const missing = ranksOf(this.size).filter((k) => !pending.parts[k]);
    this.fail('ERR_BATCHNORM_COLLECTIVE_TIMEOUT', `round ${round}: rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not send within ${this.#timeoutMs} ms`);
  }

  #describeLeft(ranks: number[]): string {
    return ranks.map((k) => `rank ${k} ${this.#left.get(k)}`).join('; ');
  }

  /**
   * Breaks the group: every replica still there gets the error, now and for any later round.
   * The hub calls it itself; a transport calls it for a failure only it can see.
   */
  fail(code: BatchNormErrorCode, message: string): void {
    if (this.#broken) return;
    this.#broken = { code, message: `${message}; the group is broken` };
    const rounds = [...this.#rounds.keys()];
    this.close();
    const round = rounds.length > 0 ? Math.min(...rounds) : 0;
    for (let k = 0; k < this.size; k++) if (!this.#left.has(k)) this.#send(k, { round, error: this.#broken });
  }
}
