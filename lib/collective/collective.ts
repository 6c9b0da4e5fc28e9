/**
 * The collective of SPEC section 8: how replicas of a data-parallel training step add up
 * numbers. `allReduceSum` replaces `data` on every replica with the element-wise sum of every
 * replica's `data`, and every replica ends with bitwise the same sums (each implementation
 * adds in rank order). The layer (lib/layer/) and user code need nothing else, so any
 * transport plugs in: worker threads (worker-group.ts), child processes (ipc.ts), or a network
 * (hub.ts and remote.ts hold the transport-neutral halves).
 */
import { describe, rangeError, typeError } from '../errors';
import { float64Array } from '../validate';

export interface Collective {
  /** This replica's index, 0 .. size - 1. */
  readonly rank: number;
  /** How many replicas take part. */
  readonly size: number;
  /**
   * Sums `data` element-wise across the replicas, in place. Every replica calls it the same
   * number of times, in the same order, with arrays of one length. Synchronous collectives
   * return when the sums are in; asynchronous ones return a Promise.
   */
  allReduceSum(data: Float64Array): void | Promise<void>;
  /**
   * `true`: `allReduceSum` returns a Promise. Optional, but a collective that declares it lets
   * the layer refuse a synchronous step before any replica sees a round of it; one that does
   * not is found out when its first call returns a Promise, after that round has begun.
   */
  readonly async?: boolean;
}

/** A collective whose `allReduceSum` returns once the sums are in (usable from synchronous code). */
export interface SyncCollective extends Collective {
  allReduceSum(data: Float64Array): void;
  readonly async?: false;
}

/** A collective whose `allReduceSum` resolves once the sums are in (the event loop stays free). */
export interface AsyncCollective extends Collective {
  allReduceSum(data: Float64Array): Promise<void>;
  readonly async?: true;
}

/** allReduceSum's argument: a Float64Array of at most `capacity` numbers. */
export function reduceData(data: unknown, capacity: number): Float64Array {
  const array = float64Array(data, 'data');
  if (array.length > capacity) {
    throw rangeError('ERR_BATCHNORM_LENGTH_MISMATCH', `at most ${capacity} numbers (the group's capacity)`, 'data', `length ${array.length}`);
  }
  return array;
}

/** A rank of a group of `size`: an integer in [0, size). */
export function rankIn(rank: unknown, size: number, name: string): number {
  if (typeof rank !== 'number') throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a number', name, rank);
  if (!Number.isInteger(rank) || rank < 0 || rank >= size) {
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', `an integer in [0, ${size - 1}]`, name, describe(rank));
  }
  return rank;
}

/** A timeout in milliseconds: a number > 0 (Infinity waits forever). */
export function timeoutMs(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a number', name, value);
  if (!(value > 0)) throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'a number of milliseconds > 0', name, describe(value));
  return value;
}

/** A function argument (a transport's `send`). */
export function callback<F extends (...args: never[]) => unknown>(value: unknown, name: string): F {
  if (typeof value !== 'function') throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a function', name, value);
  return value as F;
}

/** The ranks of a group of `size`: 0, 1, ..., size - 1. */
export const ranksOf = (size: number): number[] => Array.from({ length: size }, (_, k) => k);

/** How long a replica waits for the others by default before giving up with an error. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** Sums `parts` (one per rank, in rank order) into `out`: out = ((p0 + p1) + p2) + ... */
export function sumInRankOrder(parts: readonly Float64Array[], out: Float64Array): void {
  out.set(parts[0]!.subarray(0, out.length));
  for (let k = 1; k < parts.length; k++) {
    const part = parts[k]!;
    for (let i = 0; i < out.length; i++) out[i] += part[i];
  }
}
