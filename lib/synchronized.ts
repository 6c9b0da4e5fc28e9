/**
 * Synchronized statistics (SPEC section 8): the pieces of a training step whose batch is split
 * across replicas (threads, processes, machines). Each replica reduces its own shard, only O(C)
 * numbers travel, and every replica then normalises (forwardTrain with `moments`) and
 * back-propagates (backward with `sums`) with the whole batch's statistics:
 *
 *     forward:   batchMoments(x)  -> gather every replica's  -> mergeMoments -> forwardTrain({ moments })
 *     backward:  backwardSums(dy, x) -> add every replica's  -> backward({ sums, localSums })
 *
 * Each side reads x (and dy) exactly as often as an unsynchronized step: batchMoments and
 * backwardSums are the reduce pass, the calls with `moments` / `sums` + `localSums` the
 * elementwise pass.
 */
import { backend } from './backend';
import type { GivenMoments } from './plan';
import type { BackwardSumsOptions, BackwardSumsResult, BatchMomentsOptions, Moments } from './types';
import { planBackwardSums, planBatchMoments, planMergeMoments } from './validate';

/**
 * This batch's per-channel moments: `count` = M values per channel, their `mean` and `m2`
 * (sum of squared deviations), in float64, from one read of `x`. An empty batch has count 0
 * and zero moments.
 *
 * @throws TypeError / RangeError with a `code`, before anything is written (SPEC section 4)
 */
export function batchMoments(x: Float32Array, shape: readonly number[], opts?: BatchMomentsOptions): Moments {
  const p = planBatchMoments(x, shape, opts);
  backend.batchMoments(p);
  return { count: p.g.outer * p.g.inner, mean: p.mean, m2: p.m2 };
}

/** {@link batchMoments} computed off the JavaScript thread (on the native backend). */
export async function batchMomentsAsync(x: Float32Array, shape: readonly number[], opts?: BatchMomentsOptions): Promise<Moments> {
  const p = planBatchMoments(x, shape, opts);
  await backend.batchMomentsAsync(p);
  return { count: p.g.outer * p.g.inner, mean: p.mean, m2: p.m2 };
}

/**
 * The moments of the concatenation of `parts`, by Chan's parallel rule in float64, merged in
 * array order: every replica that merges the same list gets the same bits. Parts with count 0
 * contribute nothing. Pure arithmetic on O(C) numbers, the same on both backends.
 *
 *     n = n_a + n_b;  delta = mean_b - mean_a;
 *     mean = mean_a + delta * n_b / n;  m2 = m2_a + m2_b + delta^2 * n_a * n_b / n
 *
 * @throws TypeError / RangeError with a `code`: not 1 to 65536 moments of one channel count
 */
export function mergeMoments(parts: readonly Moments[]): Moments {
  const checked = planMergeMoments(parts);
  const C = checked[0]!.mean.length;
  const merged: GivenMoments = { count: 0, mean: new Float64Array(C), m2: new Float64Array(C) };
  for (const part of checked) mergeInto(merged, part);
  return merged;
}

/** Merges `part` into `into` (Chan's rule); the first part with values is copied as it is. */
function mergeInto(into: GivenMoments, part: GivenMoments): void {
  if (part.count === 0) return;
  if (into.count === 0) {
    into.mean.set(part.mean);
    into.m2.set(part.m2);
    into.count = part.count;
    return;
  }
  const n = into.count + part.count;
  const weightNew = part.count / n;
  const weightCross = (into.count * part.count) / n;
  const { mean, m2 } = into;
  for (let c = 0; c < mean.length; c++) {
    const delta = part.mean[c] - mean[c];
    mean[c] += delta * weightNew;
    m2[c] += part.m2[c] + delta * delta * weightCross;
  }
  into.count = n;
}

/**
 * This batch's per-channel gradient sums, `sumDy = sum(dy)` and `sumDyXmu = sum(dy * (x -
 * saveMean))` in float64, from one read of `dy` and `x`; `count` is its M. Added up across
 * replicas they are backward's `sums`; as they are, its `localSums`.
 *
 * @throws TypeError / RangeError with a `code`, before anything is written (SPEC section 4)
 */
export function backwardSums(dy: Float32Array, x: Float32Array, shape: readonly number[], opts: BackwardSumsOptions): BackwardSumsResult {
  const p = planBackwardSums(dy, x, shape, opts);
  backend.backwardSums(p);
  return { count: p.g.outer * p.g.inner, sumDy: p.sumDy, sumDyXmu: p.sumDyXmu };
}

/** {@link backwardSums} computed off the JavaScript thread (on the native backend). */
export async function backwardSumsAsync(dy: Float32Array, x: Float32Array, shape: readonly number[], opts: BackwardSumsOptions): Promise<BackwardSumsResult> {
  const p = planBackwardSums(dy, x, shape, opts);
  await backend.backwardSumsAsync(p);
  return { count: p.g.outer * p.g.inner, sumDy: p.sumDy, sumDyXmu: p.sumDyXmu };
}
