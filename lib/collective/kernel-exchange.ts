/**
 * A worker group replica's side of the exchange that the native kernels run themselves (SPEC
 * section 8; native/src/channel_exchange.h has the protocol): a synchronized layer's
 * forwardTrain and backward share each channel's moments or gradient sums with the other
 * replicas between the channel's reduce and its apply, instead of a reduce call, a collective
 * round and an apply call. The group's shared memory (worker-group.ts) holds per channel an
 * arrival counter and two parities of `size` slots of 4 doubles (3 numbers and the op that
 * published them); this replica keeps how many rounds it ran per channel, and one op at a time.
 */
import { BatchNormStateError, rangeError } from '../errors';
import { ranksOf } from './collective';

/** The native binding's `exchange` argument: the group's memory for channels [0, C). */
export interface ExchangeViews {
  readonly slots: Float64Array;
  readonly arrivals: Int32Array;
  readonly rounds: Int32Array;
  /** The group's word saying why it broke (0: it has not). */
  readonly broken: Int32Array;
  /**
   * Written by the op: [status, channel, values per channel over every replica, the replica
   * found running another op, that op, this replica's op].
   */
  readonly report: Float64Array;
  readonly rank: number;
  readonly size: number;
  readonly timeoutMs: number;
  /** What the op writes into `broken` when one of its waits times out. */
  readonly timeoutCode: number;
  /** What it writes there when a replica runs another op. */
  readonly mismatchCode: number;
}

/** The op's outcome in report[0] (binding.cpp's report_outcome); NOT_RUN before it ends. */
export enum ExchangeStatus {
  NotRun = -1,
  Done = 0,
  TimedOut = 1,
  Broken = 2,
  TooFewValues = 3,
  Mismatch = 4,
}

/**
 * The group's exchange memory for `size` replicas and `maxChannels` channels: the channels'
 * Int32 arrival counters, per rank an Int32 count of the ops it began (so that a replica that
 * gives up can name the ones that never came), then (8-byte aligned) the channels' slots,
 * 2 parities x size x FIELDS doubles per channel.
 */
const FIELDS = 4;
const slotsOffset = (size: number, maxChannels: number) => 8 * Math.ceil((maxChannels + size) / 2);
const slotCount = (size: number, channels: number) => channels * 2 * size * FIELDS;
export const exchangeBytes = (size: number, maxChannels: number) => slotsOffset(size, maxChannels) + 8 * slotCount(size, maxChannels);

/**
 * Throws the group's error for a failed exchange (status TimedOut, Broken or Mismatch) at
 * `where`; `missing`: the ranks that had not begun the op (empty when all had, and one stopped
 * inside it); `mismatch`: with Mismatch, which replica runs which other op.
 */
export type ExchangeFailure = (status: ExchangeStatus, where: string, missing: number[], mismatch: string) => never;

/** A synchronized training step with fewer than 2 values per channel over all `size` replicas. */
export function tooFewOverReplicas(count: number, size: number) {
  return rangeError('ERR_BATCHNORM_TOO_FEW_VALUES', 'more than 1 value per channel when training', 'x', `${count} value(s) per channel over the ${size} replicas`);
}

/** An op as the kernels publish it (channel_exchange.h's op_id: 2 C, plus 1 for backward), named. */
function opName(op: number): string {
  return `${op % 2 === 1 ? 'backward' : 'forwardTrain'} over ${Math.floor(op / 2)} channels`;
}

export class KernelExchange {
  readonly #all: ExchangeViews;
  readonly #views = new Map<number, ExchangeViews>();
  /** Per rank, how many ops it began (shared; each replica counts its own). */
  readonly #begun: Int32Array;
  #busy = false;

  /**
   * `memory`: the group's exchange SharedArrayBuffer (arrival counters, then slots, for
   * `maxChannels` channels); `broken`: the group's control word for why it broke.
   */
  constructor(
    readonly maxChannels: number,
    memory: SharedArrayBuffer,
    broken: Int32Array,
    replica: { rank: number; size: number; timeoutMs: number; timeoutCode: number; mismatchCode: number },
    private readonly fail: ExchangeFailure,
    /** The replica's collective is asynchronous: layers take their async methods only, as with any such collective. */
    readonly asyncCollective = false,
  ) {
    this.#all = {
      ...replica,
      slots: new Float64Array(memory, slotsOffset(replica.size, maxChannels), slotCount(replica.size, maxChannels)),
      arrivals: new Int32Array(memory, 0, maxChannels),
      rounds: new Int32Array(maxChannels),
      broken,
      report: new Float64Array(6),
    };
    this.#begun = new Int32Array(memory, 4 * maxChannels, replica.size);
  }

  /** Runs `op` with the exchange for C channels (C <= maxChannels); returns its result and the values per channel over every replica. */
  run<T>(C: number, what: string, op: (views: ExchangeViews) => T): { result: T; count: number } {
    const views = this.#begin(C, what);
    try {
      return { result: op(views), count: this.#outcome(C, what) };
    } finally {
      this.#end();
    }
  }

  /** {@link run} for an op that runs off the JavaScript thread. */
  async runAsync<T>(C: number, what: string, op: (views: ExchangeViews) => Promise<T>): Promise<{ result: T; count: number }> {
    const views = this.#begin(C, what);
    try {
      return { result: await op(views), count: this.#outcome(C, what) };
    } finally {
      this.#end();
    }
  }

  #begin(C: number, what: string): ExchangeViews {
    if (this.#busy) throw new BatchNormStateError('ERR_BATCHNORM_BUSY', `${what} (rank ${this.#all.rank}): one synchronized op at a time per replica, and one is still running`);
    this.#busy = true;
    Atomics.add(this.#begun, this.#all.rank, 1);
    this.#all.report[0] = ExchangeStatus.NotRun;
    let views = this.#views.get(C);
    if (!views) {
      const { slots, arrivals, rounds } = this.#all;
      views = { ...this.#all, slots: slots.subarray(0, slotCount(this.#all.size, C)), arrivals: arrivals.subarray(0, C), rounds: rounds.subarray(0, C) };
      this.#views.set(C, views);
    }
    return views;
  }

  /**
   * An op still NotRun threw before it reached the kernels (the binding refused an argument, or
   * an output could not be allocated): it is not counted as begun, so that the replicas waiting
   * for it name this one as missing.
   */
  #end(): void {
    if (this.#all.report[0] === ExchangeStatus.NotRun) Atomics.sub(this.#begun, this.#all.rank, 1);
    this.#busy = false;
  }

  /** The values per channel over every replica, or the error of a failed op. */
  #outcome(C: number, what: string): number {
    const [status, channel, count, other, otherOp, ownOp] = this.#all.report as unknown as [ExchangeStatus, number, number, number, number, number];
    if (status === ExchangeStatus.Done) return count;
    if (status === ExchangeStatus.TooFewValues) throw tooFewOverReplicas(count, this.#all.size);
    const mismatch = status === ExchangeStatus.Mismatch ? `rank ${other} runs ${opName(otherOp)} and rank ${this.#all.rank} ${opName(ownOp)}` : '';
    return this.fail(status, `${what} (rank ${this.#all.rank} of ${this.#all.size}, channel ${channel} of ${C})`, this.#notBegun(), mismatch);
  }

  /** The ranks that have begun fewer ops than this one (the counts wrap as Int32s). */
  #notBegun(): number[] {
    const mine = Atomics.load(this.#begun, this.#all.rank);
    return ranksOf(this.#all.size).filter((k) => ((Atomics.load(this.#begun, k) - mine) | 0) < 0);
  }
}
