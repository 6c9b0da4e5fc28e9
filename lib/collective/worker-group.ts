/**
 * A Collective for worker_threads (SPEC section 8) over shared memory: no messages, no copies
 * beyond one into shared memory and the sum out of it.
 *
 * `createWorkerGroup(size)` allocates the group: control words and, per replica, two slots of
 * `capacity` doubles (SharedArrayBuffers, so the description can travel in `workerData` or a
 * message and stay shared). `joinWorkerGroup(group, rank)` gives one replica its collective.
 *
 * One round of allReduceSum: each replica copies its data into its slot of buffer `round & 1`,
 * adds one to the arrival counter and waits (Atomics.wait, or Atomics.waitAsync) until the
 * counter reaches size * round; then each adds all slots in rank order, so every replica
 * computes the same sums with the same operations: bitwise the same result. Alternating two
 * buffers makes one barrier per round enough: a replica can write round r + 2's data into a
 * buffer only after every replica arrived at round r + 1, that is, after all read round r's.
 *
 * A replica that never arrives (it died, or took another path) does not hang the others: each
 * wait has a deadline (the group's timeoutMs), and the first replica to give up marks the group
 * broken and wakes the rest, so every replica fails with an error that names the missing ranks.
 * `abortWorkerGroup(group)` (e.g. from the main thread, when a worker exits) or a replica's
 * `abort()` breaks the group at once.
 *
 * Where the native backend is loaded, the group also has shared memory for BatchNorm layers to
 * synchronize inside the native kernels (kernel-exchange.ts), channel by channel; layers whose
 * collective is a replica of such a group use it instead of allReduceSum. Every replica of one
 * group must then run the native backend (joinWorkerGroup checks).
 */
import { loaded } from '../backend';
import { BatchNormCollectiveError, BatchNormStateError, rangeError, typeError } from '../errors';
import { booleanOption, integerAtLeast, optionsObject } from '../layer/checks';
import { DEFAULT_TIMEOUT_MS, rankIn, ranksOf, reduceData, sumInRankOrder, timeoutMs, type AsyncCollective, type SyncCollective } from './collective';
import { exchangeBytes, ExchangeStatus, KernelExchange } from './kernel-exchange';

/** A worker group's shared state; plain data that postMessage and workerData carry. */
export interface WorkerGroup {
  readonly size: number;
  /** The most numbers one allReduceSum call may carry. */
  readonly capacity: number;
  /** How long a replica waits for the others before it fails (ms). */
  readonly timeoutMs: number;
  readonly control: SharedArrayBuffer;
  readonly slots: SharedArrayBuffer;
  /** The most channels a layer may have to synchronize inside the native kernels. */
  readonly maxChannels: number;
  /** Memory for the native kernels' exchange; null where the group was made without the native backend. */
  readonly exchange: SharedArrayBuffer | null;
}

export interface WorkerGroupOptions {
  /**
   * The most numbers one allReduceSum call may carry. Default 65536; a synchronized BatchNorm
   * layer of C channels needs size * (1 + 2C).
   */
  capacity?: number;
  /** How long a replica waits for the others before it fails, in ms. Default 30000. */
  timeoutMs?: number;
  /**
   * The most channels that layers synchronize inside the native kernels; layers with more use
   * allReduceSum. Default 4096, which takes 4096 * (4 + 64 * size) + 4 * size bytes of shared memory.
   */
  maxChannels?: number;
}

export interface JoinOptions {
  /**
   * `true`: allReduceSum returns a Promise and waits with Atomics.waitAsync, so the event loop
   * (of the main thread, say) stays free. Default `false`: it blocks in Atomics.wait.
   */
  async?: boolean;
  /** This replica's timeout (ms), in place of the group's. */
  timeoutMs?: number;
}

/** A worker group replica's collective, synchronous or asynchronous. */
export interface WorkerCollective {
  /** This replica's index, 0 .. size - 1. */
  readonly rank: number;
  /** How many replicas the group has. */
  readonly size: number;
  /** Breaks the group: every replica's pending and later allReduceSum fails. */
  abort(): void;
}

// Control words: the arrival counter (it wraps; round r completes at size * r), why the group
// broke (0: it has not), then per rank whether it joined and the last round it arrived at, and
// per buffer and rank the length it sent.
const ARRIVALS = 0;
const BROKEN = 1;
const HEADER = 2;
const controlWords = (size: number) => HEADER + 4 * size;

const DEFAULT_CAPACITY = 65536;
const DEFAULT_MAX_CHANNELS = 4096;

/** Why a group broke, and which rank broke it (-1: abortWorkerGroup). */
enum Break {
  Timeout = 1,
  Abort = 2,
  /** The native kernels' exchange found replicas running different ops. */
  Mismatch = 3,
}
const encodeBreak = (why: Break, by: number) => (by + 2) * 4 + why;

/** A new worker group of `size` replicas. */
export function createWorkerGroup(size: number, options?: WorkerGroupOptions): WorkerGroup {
  const n = integerAtLeast(size, 'size', 1);
  const o = optionsObject(options, 'opts', ['capacity', 'timeoutMs', 'maxChannels']);
  const capacity = o.capacity === undefined ? DEFAULT_CAPACITY : integerAtLeast(o.capacity, 'opts.capacity', 1);
  const timeout = timeoutMs(o.timeoutMs, 'opts.timeoutMs', DEFAULT_TIMEOUT_MS);
  const maxChannels = o.maxChannels === undefined ? DEFAULT_MAX_CHANNELS : integerAtLeast(o.maxChannels, 'opts.maxChannels', 1);
  try {
    return {
      size: n,
      capacity,
      timeoutMs: timeout,
      control: new SharedArrayBuffer(4 * controlWords(n)),
      slots: new SharedArrayBuffer(8 * 2 * n * capacity),
      maxChannels,
      exchange: loaded.native ? new SharedArrayBuffer(exchangeBytes(n, maxChannels)) : null,
    };
  } catch {
    throw rangeError('ERR_BATCHNORM_OUT_OF_MEMORY', 'shared memory for the group', 'opts.capacity', `${2 * n * capacity} doubles`);
  }
}

/** Checks that `group` is what createWorkerGroup made (after any structured clone). */
function checkGroup(group: unknown): WorkerGroup {
  const g = optionsObject(group as WorkerGroup, 'group');
  const isShared = (v: unknown): v is SharedArrayBuffer => Object.prototype.toString.call(v) === '[object SharedArrayBuffer]';
  const size = integerAtLeast(g.size, 'group.size', 1);
  const capacity = integerAtLeast(g.capacity, 'group.capacity', 1);
  const maxChannels = integerAtLeast(g.maxChannels, 'group.maxChannels', 1);
  const exchangeOk = g.exchange === null || (isShared(g.exchange) && g.exchange.byteLength === exchangeBytes(size, maxChannels));
  if (!isShared(g.control) || !isShared(g.slots) || g.control.byteLength !== 4 * controlWords(size) || g.slots.byteLength !== 16 * size * capacity || !exchangeOk) {
    throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a worker group from createWorkerGroup', 'group', group);
  }
  return { size, capacity, timeoutMs: timeoutMs(g.timeoutMs, 'group.timeoutMs', DEFAULT_TIMEOUT_MS), control: g.control, slots: g.slots, maxChannels, exchange: g.exchange };
}

/** Breaks the group from outside (e.g. the main thread when a worker exits): every replica's wait fails. */
export function abortWorkerGroup(group: WorkerGroup): void {
  const g = checkGroup(group);
  breakGroup(new Int32Array(g.control), Break.Abort, -1);
}

/** Marks the group broken (the first reason wins) and wakes every waiting replica. */
function breakGroup(control: Int32Array, why: Break, by: number): void {
  Atomics.compareExchange(control, BROKEN, 0, encodeBreak(why, by));
  // Waiters sleep while the counter keeps its value: change it, so none can miss the wake-up.
  Atomics.add(control, ARRIVALS, 1);
  Atomics.notify(control, ARRIVALS);
}

/** What a round asks its runner: wait while the counter equals `seen`, at most `ms`. */
interface Wait {
  seen: number;
  ms: number;
}

/** One replica's view of the group; its rounds are written once and run sync or async. */
class Replica {
  readonly control: Int32Array;
  readonly #slots: Float64Array[][]; // [buffer][rank]
  /** The native kernels' exchange, when the group has one. */
  readonly kernels: KernelExchange | null = null;
  #round = 0;
  #busy = false;

  constructor(
    readonly group: WorkerGroup,
    readonly rank: number,
    readonly timeoutMs: number,
    asyncCollective: boolean,
  ) {
    this.control = new Int32Array(group.control);
    const { size, capacity } = group;
    const all = new Float64Array(group.slots);
    this.#slots = [0, 1].map((b) => Array.from({ length: size }, (_, k) => all.subarray((b * size + k) * capacity, (b * size + k + 1) * capacity)));
    if (group.exchange && !loaded.native) {
      throw new BatchNormCollectiveError(
        'ERR_BATCHNORM_COLLECTIVE_MISMATCH',
        `joinWorkerGroup (rank ${rank}): the group was made where the native backend is loaded, and its layers synchronize inside the native kernels, but this thread runs the JavaScript backend (${loaded.fallbackReason}); every replica must run the same backend`,
      );
    }
    if (Atomics.compareExchange(this.control, HEADER + rank, 0, 1) !== 0) {
      throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'a rank that has not joined this group yet', 'rank', `${rank} (already joined)`);
    }
    if (group.exchange) {
      const replica = { rank, size, timeoutMs, timeoutCode: encodeBreak(Break.Timeout, rank), mismatchCode: encodeBreak(Break.Mismatch, rank) };
      this.kernels = new KernelExchange(group.maxChannels, group.exchange, this.control.subarray(BROKEN, BROKEN + 1), replica, (...failure) => this.#exchangeFailed(...failure), asyncCollective);
    }
  }

  /**
   * The error of a native exchange that failed at `where`: it timed out here, it found a replica
   * running another op (`mismatch` says which), or the group broke. `missing`: the ranks that had
   * not begun the op.
   */
  #exchangeFailed(status: ExchangeStatus, where: string, missing: number[], mismatch: string): never {
    const names = rankList(missing);
    if (status === ExchangeStatus.TimedOut) {
      breakGroup(this.control, Break.Timeout, this.rank); // the op marked it; this wakes replicas waiting in JavaScript
      const who = names ? `${names} did not arrive` : 'the other replicas began the op but did not all arrive';
      throw new BatchNormCollectiveError('ERR_BATCHNORM_COLLECTIVE_TIMEOUT', `${where}: ${who} within ${this.timeoutMs} ms; the worker group is broken`);
    }
    if (status === ExchangeStatus.Mismatch) {
      breakGroup(this.control, Break.Mismatch, this.rank); // as above
      throw new BatchNormCollectiveError('ERR_BATCHNORM_COLLECTIVE_MISMATCH', `${where}: ${mismatch}; every replica must run the same layer's op, over as many channels; the worker group is broken`);
    }
    this.#checkBroken(where, names);
    throw new Error(`${where}: the native exchange ended without an outcome (status ${status}); this is a bug in batchnorm`);
  }

  /** One allReduceSum: yields its waits, returns once `data` holds the sums. */
  *round(data: Float64Array): Generator<Wait, void, void> {
    if (this.#busy) throw new BatchNormStateError('ERR_BATCHNORM_BUSY', `allReduceSum (rank ${this.rank}): one call at a time per replica, and one is still waiting`);
    this.#busy = true;
    try {
      yield* this.#steps(data);
    } finally {
      this.#busy = false;
    }
  }

  *#steps(data: Float64Array): Generator<Wait, void, void> {
    const { control, rank } = this;
    const { size } = this.group;
    const r = ++this.#round;
    const buffer = r & 1;
    this.#checkBroken(this.#where(r));
    this.#slots[buffer]![rank]!.set(data);
    Atomics.store(control, this.#lengthWord(buffer, rank), data.length);
    Atomics.store(control, HEADER + size + rank, r);
    const target = Math.imul(size, r); // the counter wraps as an Int32; so does this
    if (((Atomics.add(control, ARRIVALS, 1) + 1) | 0) === target) Atomics.notify(control, ARRIVALS);
    const deadline = performance.now() + this.timeoutMs;
    for (;;) {
      const seen = Atomics.load(control, ARRIVALS);
      if (((seen - target) | 0) >= 0) break;
      this.#checkBroken(this.#where(r));
      const ms = deadline - performance.now();
      if (ms <= 0) this.#giveUp(r);
      yield { seen, ms };
    }
    this.#checkBroken(this.#where(r));
    this.#checkLengths(r, buffer, data.length);
    sumInRankOrder(this.#slots[buffer]!, data);
  }

  abort(): void {
    breakGroup(this.control, Break.Abort, this.rank);
  }

  #lengthWord(buffer: number, rank: number): number {
    return HEADER + 2 * this.group.size + buffer * this.group.size + rank;
  }

  #where(r: number): string {
    return `allReduceSum (rank ${this.rank} of ${this.group.size}, round ${r})`;
  }

  /** Throws if the group broke; `missing` names whom the replica that broke it waited for. */
  #checkBroken(where: string, missing = this.#missing(this.#latestRound())): void {
    const code = Atomics.load(this.control, BROKEN);
    if (code === 0) return;
    const by = Math.floor(code / 4) - 2;
    const who = by < 0 ? 'abortWorkerGroup' : `rank ${by}`;
    if (code % 4 === Break.Abort) {
      throw new BatchNormCollectiveError('ERR_BATCHNORM_COLLECTIVE_ABORTED', `${where}: the worker group was aborted by ${who}`);
    }
    if (code % 4 === Break.Mismatch) {
      throw new BatchNormCollectiveError('ERR_BATCHNORM_COLLECTIVE_MISMATCH', `${where}: ${who} found the replicas running different ops in the native kernels' exchange (every replica must run the same layer's op, over as many channels); the worker group is broken`);
    }
    const waitedFor = missing
      ? `${missing} (stopped, failed, or took another path)`
      : "a replica in the native kernels' exchange (one that stopped inside it, or this one, if it came after the timeout)";
    throw new BatchNormCollectiveError('ERR_BATCHNORM_COLLECTIVE_TIMEOUT', `${where}: ${who} gave up waiting for ${waitedFor}; the worker group is broken`);
  }

  #giveUp(r: number): never {
    const missing = this.#missing(r);
    breakGroup(this.control, Break.Timeout, this.rank);
    throw new BatchNormCollectiveError('ERR_BATCHNORM_COLLECTIVE_TIMEOUT', `${this.#where(r)}: ${missing} did not arrive within ${this.timeoutMs} ms; the worker group is broken`);
  }

  /** The replicas that have not arrived at round r ('' when all have). */
  #missing(r: number): string {
    return rankList(ranksOf(this.group.size).filter((k) => this.#arrivedAt(k) < r));
  }

  /**
   * The latest round any replica arrived at: where the group broke, unless it broke in the
   * native kernels' exchange. (A call after the break has counted a round it never arrived at.)
   */
  #latestRound(): number {
    return Math.max(...ranksOf(this.group.size).map((k) => this.#arrivedAt(k)));
  }

  /** The last round replica k arrived at. */
  #arrivedAt(k: number): number {
    return Atomics.load(this.control, HEADER + this.group.size + k);
  }

  /** Every replica sees the same lengths, so all of them fail alike when they differ. */
  #checkLengths(r: number, buffer: number, length: number): void {
    for (let k = 0; k < this.group.size; k++) {
      const theirs = Atomics.load(this.control, this.#lengthWord(buffer, k));
      if (theirs !== length) {
        throw new BatchNormCollectiveError('ERR_BATCHNORM_COLLECTIVE_MISMATCH', `${this.#where(r)}: rank ${k} sent ${theirs} numbers and rank ${this.rank} ${length}; every replica must send as many`);
      }
    }
  }
}

/** "rank 2", "ranks 1, 3"; '' for none. */
function rankList(ranks: number[]): string {
  return ranks.length === 0 ? '' : `rank${ranks.length === 1 ? '' : 's'} ${ranks.join(', ')}`;
}

/** Where a worker group's collective keeps its native exchange (null: none); see {@link kernelExchangeOf}. */
const kernelExchange = Symbol('batchnorm.kernelExchange');

/** The native kernels' exchange of a worker group replica's collective; null for any other collective. */
export function kernelExchangeOf(collective: object): KernelExchange | null {
  return (collective as { [kernelExchange]?: KernelExchange | null })[kernelExchange] ?? null;
}

/** Atomics.waitAsync (ES2024; in Node 16 and later), typed here because the lib target is ES2022. */
type WaitAsync = (array: Int32Array, index: number, value: number, ms: number) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;
/** The longest delay setTimeout takes (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** This replica's collective: `rank` of the group, synchronous unless `{ async: true }`. */
export function joinWorkerGroup(group: WorkerGroup, rank: number, options: JoinOptions & { async: true }): AsyncCollective & WorkerCollective;
export function joinWorkerGroup(group: WorkerGroup, rank: number, options?: JoinOptions & { async?: false }): SyncCollective & WorkerCollective;
export function joinWorkerGroup(group: WorkerGroup, rank: number, options?: JoinOptions): (SyncCollective | AsyncCollective) & WorkerCollective;
export function joinWorkerGroup(group: WorkerGroup, rank: number, options?: JoinOptions): (SyncCollective | AsyncCollective) & WorkerCollective {
  const g = checkGroup(group);
  const o = optionsObject(options, 'opts', ['async', 'timeoutMs']);
  const r = rankIn(rank, g.size, 'rank');
  const isAsync = booleanOption(o.async, 'opts.async', false);
  const replica = new Replica(g, r, timeoutMs(o.timeoutMs, 'opts.timeoutMs', g.timeoutMs), isAsync);
  const { control } = replica;
  const common = { rank: r, size: g.size, abort: () => replica.abort(), [kernelExchange]: replica.kernels };
  if (isAsync) {
    return {
      ...common,
      async: true,
      async allReduceSum(data: Float64Array): Promise<void> {
        const steps = replica.round(reduceData(data, g.capacity));
        for (let next = steps.next(); !next.done; next = steps.next()) {
          const wait = waitAsync(control, ARRIVALS, next.value.seen, next.value.ms);
          if (!wait.async) continue;
          // A pending waitAsync alone does not keep the event loop (and so the thread) alive.
          const keepAlive = setTimeout(() => {}, Math.min(next.value.ms, MAX_TIMER_MS));
          try {
            await wait.value;
          } finally {
            clearTimeout(keepAlive);
          }
        }
      },
    };
  }
  return {
    ...common,
    async: false,
    allReduceSum(data: Float64Array): void {
      const steps = replica.round(reduceData(data, g.capacity));
      for (let next = steps.next(); !next.done; next = steps.next()) Atomics.wait(control, ARRIVALS, next.value.seen, next.value.ms);
    },
  };
}
