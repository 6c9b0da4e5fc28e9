/** Shapes for the numerical sweeps: fixed edge cases plus seeded random ones. */
import { rng } from './random';

export interface ShapeCase {
  shape: number[];
  axis: number;
}

/**
 * Fixed cases, each aimed at one code path (see native/src/chunking.h): runs walked in memory
 * order, channel by channel, and cut into pieces; rows (inner == 1, or short runs as columns)
 * narrow, with vector tails, over many sub-blocks and row chunks, and wider than one column
 * block; one channel; negative axes; 2-D to 5-D; and M from 2 up to 10^6.
 */
export const FIXED_CASES: ShapeCase[] = [
  { shape: [2, 3], axis: 1 }, // M = 2, rows
  { shape: [2, 1], axis: 1 }, // one channel, M = 2
  { shape: [1000003, 1], axis: 1 }, // one channel, M ~ 10^6, one long run
  { shape: [4, 3, 250000], axis: 1 }, // M = 10^6, long runs cut into pieces
  { shape: [1000, 1000, 3], axis: -1 }, // NHWC-like, C = 3, M = 10^6
  { shape: [250000, 5], axis: -1 }, // rows with a vector tail
  { shape: [7, 17, 5, 3], axis: 1 }, // short runs grouped into chunks
  { shape: [3, 16, 7, 7], axis: 1 },
  { shape: [3, 5, 7, 11, 2], axis: 2 }, // 5-D
  { shape: [5, 4100], axis: 1 }, // rows wider than one column block
  { shape: [33, 19, 2049], axis: 1 }, // runs one past a chunk
  { shape: [64, 8, 1], axis: 1 }, // inner == 1 written as a trailing 1
  { shape: [2, 2, 2], axis: -1 },
  { shape: [40, 33], axis: 0 }, // outer == 1
  { shape: [100, 70, 2], axis: 1 }, // runs of 2
  { shape: [96, 31], axis: -1 },
  { shape: [2, 37, 3, 3], axis: -3 },
  { shape: [6, 10, 100], axis: 1 }, // runs in memory order (not channel by channel)
  { shape: [4, 9, 1500], axis: 1 }, // runs long enough to go channel by channel
  { shape: [70, 3, 63], axis: 1 }, // the longest runs still handled as rows
  { shape: [9, 5, 64], axis: 1 }, // the shortest runs handled as runs
];

/** Seeded random shapes, rank 2 to 5, with at least 2 values per channel. */
export function randomCases(seed: number, count: number): ShapeCase[] {
  const r = rng(seed);
  const out: ShapeCase[] = [];
  while (out.length < count) {
    const rank = r.int(2, 5);
    const shape = Array.from({ length: rank }, () => r.int(1, rank > 3 ? 12 : 40));
    const axis = r.int(-rank, rank - 1);
    const a = axis < 0 ? axis + rank : axis;
    const m = shape.reduce((p, d, i) => (i === a ? p : p * d), 1);
    if (m >= 2) out.push({ shape, axis });
  }
  return out;
}

export const label = (c: ShapeCase) => `[${c.shape.join(',')}] axis ${c.axis}`;
