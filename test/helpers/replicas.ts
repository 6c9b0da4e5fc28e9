/**
 * A batch split across replicas along its leading (batch) axis, as data-parallel training
 * splits it, and an in-memory collective for tests that run every replica in one thread.
 */
import { ReductionHub, RemoteCollective, type AsyncCollective } from '../../lib/index';
import type { Rng } from './random';

/** One replica's share of a batch: its rows, as views into the whole batch's arrays. */
export interface Shard {
  shape: number[];
  x: Float32Array;
  dy: Float32Array;
}

/**
 * Splits `x` and `dy` of `shape` into shards of `rows[k]` leading rows each (rows sum to
 * shape[0]; zeros make empty shards).
 */
export function shards(x: Float32Array, dy: Float32Array, shape: readonly number[], rows: readonly number[]): Shard[] {
  const perRow = x.length / shape[0]!;
  let at = 0;
  return rows.map((n) => {
    const range = [at * perRow, (at + n) * perRow] as const;
    at += n;
    return { shape: [n, ...shape.slice(1)], x: x.subarray(...range), dy: dy.subarray(...range) };
  });
}

/** `total` rows dealt at random to `replicas` shards, some of them empty when replicas > 2. */
export function unequalRows(r: Rng, total: number, replicas: number): number[] {
  const rows = new Array<number>(replicas).fill(0);
  for (let i = 0; i < total; i++) rows[r.int(0, Math.max(0, replicas - 2))]!++; // the last replica gets none
  return r.uniform() < 0.5 ? rows : rows.reverse();
}

/** Concatenates arrays in order. */
export function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * `size` collectives that meet in memory: the package's hub and replica halves (lib/collective/
 * hub.ts, remote.ts) with function calls for a transport.
 */
export function memoryGroup(size: number): AsyncCollective[] {
  const replicas: RemoteCollective[] = [];
  const hub = new ReductionHub(size, (rank, reply) => replicas[rank]!.deliver(reply));
  for (let rank = 0; rank < size; rank++) replicas.push(new RemoteCollective(rank, size, (round, data) => hub.contribute(rank, round, data)));
  return replicas;
}
