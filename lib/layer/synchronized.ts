/**
 * The layer's synchronized steps (SPEC section 8), as steps (see kernel-calls.ts) whose calls
 * include the collective's allReduceSum:
 *
 *   forward:  batchMoments (the reduce pass over x) -> allReduceSum -> mergeMoments, then
 *             forwardTrain with the merged moments (the elementwise pass);
 *   backward: backwardSums (the reduce pass over dy and x) -> allReduceSum, then backward with
 *             the total sums and this replica's own (the elementwise pass).
 *
 * So a synchronized step reads x and dy as often as an unsynchronized one, and only O(C)
 * numbers travel. Moments cannot be added like sums (Chan's rule needs each part's mean), so
 * the forward gathers them: each replica writes its count, mean and M2 into its own slot of a
 * zeroed array and the sum over replicas is every replica's slot (x + 0 is exact), which
 * mergeMoments then merges in rank order: the same bits on every replica.
 *
 * A worker group made where the native backend is loaded synchronizes inside the kernels
 * instead (lib/collective/kernel-exchange.ts): one forwardTrain and one backward call per step,
 * which share each channel's moments or sums as soon as its reduce has them. An NCHW step then
 * reads a channel's data from memory once per pass, as an unsynchronized step does (the
 * split step reads x and dy again in the elementwise calls); the results are the same bits.
 * Layers with renorm (which needs the moments before it normalises) or more channels than the
 * group's maxChannels take the split path, on every replica alike.
 */
import { isMainThread } from 'worker_threads';

import { backend } from '../backend';
import type { Collective } from '../collective/collective';
import type { KernelExchange } from '../collective/kernel-exchange';
import { kernelExchangeOf } from '../collective/worker-group';
import { BatchNormCollectiveError } from '../errors';
import { backwardResult, trainResult } from '../plan';
import { mergeMoments } from '../synchronized';
import type { BackwardOptions, BackwardResult, ForwardTrainOptions, ForwardTrainResult, Moments } from '../types';
import { planBackward, planForwardTrain } from '../validate';
import { backwardCall, call, momentsCall, sumsCall, type KernelCall, type Steps } from './kernel-calls';

/** What a synchronized forward leaves for backward. */
export interface Synchronization {
  collective: Collective;
  /** Values per channel across every replica (the merged moments' count). */
  count: number;
  /** The exchange the forward ran in the kernels (backward does too), or null: the split path. */
  exchange: KernelExchange | null;
}

/** The exchange a layer of C channels synchronizes through inside the kernels, or null (the split path). */
export function kernelExchangeFor(collective: Collective, C: number): KernelExchange | null {
  const exchange = kernelExchangeOf(collective);
  return exchange && C <= exchange.maxChannels ? exchange : null;
}

const FORWARD = 'BatchNorm forward (synchronized in the native kernels)';
const BACKWARD = 'BatchNorm backward (synchronized in the native kernels)';

/**
 * An op synchronized inside the kernels as a step's call. Such an op waits in native code for
 * the other replicas, so it must not wait on the libuv pool, which every thread of the process
 * shares (UV_THREADPOOL_SIZE threads, 4 by default): a fifth replica's op would queue behind
 * four waiting for it until they timed out. In a worker thread, the async form therefore runs
 * the op on the worker's own thread (its Promise is settled when the call returns; the worker's
 * event loop waits meanwhile, as its kernels' threads would); only the main thread, whose
 * event loop must stay free, takes the pool (`onPool`).
 */
function exchangedCall<T>(exchange: KernelExchange, sync: () => T, onPool: () => Promise<T>): KernelCall<T> {
  return {
    // As with the split path's reduce: an asynchronous collective takes the async methods only.
    sync: () => {
      if (exchange.asyncCollective) throw asyncCollectiveError();
      return sync();
    },
    async: isMainThread ? onPool : async () => sync(),
  };
}

/** forwardTrain over every replica's batch, synchronized inside the kernels; with the values per channel over all of them. */
export function exchangedTrainCall(exchange: KernelExchange, x: Float32Array, shape: readonly number[], opts: ForwardTrainOptions): KernelCall<{ result: ForwardTrainResult; count: number }> {
  return exchangedCall(
    exchange,
    () => {
      const p = planForwardTrain(x, shape, opts, true);
      return exchange.run(p.g.channels, FORWARD, (views) => {
        p.exchange = views;
        backend.forwardTrain(p);
        return trainResult(p);
      });
    },
    () => {
      const p = planForwardTrain(x, shape, opts, true);
      return exchange.runAsync(p.g.channels, FORWARD, async (views) => {
        p.exchange = views;
        await backend.forwardTrainAsync(p);
        return trainResult(p);
      });
    },
  );
}

/** backward with every replica's gradient sums over `count` values per channel, synchronized inside the kernels. */
function exchangedBackwardCall(exchange: KernelExchange, count: number, dy: Float32Array, x: Float32Array, shape: readonly number[], opts: BackwardOptions): KernelCall<{ result: BackwardResult }> {
  return exchangedCall(
    exchange,
    () => {
      const p = planBackward(dy, x, shape, opts);
      return exchange.run(p.g.channels, BACKWARD, (views) => {
        p.exchange = { views, count };
        backend.backward(p);
        return backwardResult(p);
      });
    },
    () => {
      const p = planBackward(dy, x, shape, opts);
      return exchange.runAsync(p.g.channels, BACKWARD, async (views) => {
        p.exchange = { views, count };
        await backend.backwardAsync(p);
        return backwardResult(p);
      });
    },
  );
}

/** A sync layer call on an asynchronous collective. */
function asyncCollectiveError(): BatchNormCollectiveError {
  return new BatchNormCollectiveError(
    'ERR_BATCHNORM_COLLECTIVE_ASYNC',
    "The layer's collective is asynchronous (its allReduceSum returns a Promise): call forwardAsync and backwardAsync, " +
      'or give the layer a synchronous collective (e.g. joinWorkerGroup(group, rank) without { async: true })',
  );
}

/** A collective's allReduceSum as a step's call; from sync code it must not return a Promise. */
function reduceCall(collective: Collective, data: Float64Array): KernelCall<void> {
  return {
    sync: () => {
      if (collective.async === true) throw asyncCollectiveError(); // before the other replicas see the round
      const pending = collective.allReduceSum(data);
      if (pending && typeof pending.then === 'function') {
        pending.then(undefined, () => {}); // the error below is what the caller needs to see
        throw asyncCollectiveError();
      }
    },
    async: async () => {
      await collective.allReduceSum(data);
    },
  };
}

/** The moments of the whole batch: this replica's `x` and every other replica's. */
export function* synchronizedMoments(collective: Collective, x: Float32Array, shape: readonly number[], axis: number, C: number): Steps<Moments> {
  const { rank, size } = collective;
  const stride = 1 + 2 * C; // count, mean[C], m2[C]
  const gathered = new Float64Array(size * stride);
  const part = (k: number) => {
    const slot = gathered.subarray(k * stride, (k + 1) * stride);
    return { slot, mean: slot.subarray(1, 1 + C), m2: slot.subarray(1 + C) };
  };
  const own = part(rank);
  own.slot[0] = (yield* call(momentsCall(x, shape, { axis, mean: own.mean, m2: own.m2 }))).count;
  yield* call(reduceCall(collective, gathered));
  return mergeMoments(Array.from({ length: size }, (_, k) => {
    const { slot, mean, m2 } = part(k);
    return { count: slot[0]!, mean, m2 };
  }));
}

/** backward with the whole batch's gradient sums for dx; dgamma and dbeta this replica's own. */
export function* synchronizedBackward(sync: Synchronization, dy: Float32Array, x: Float32Array, shape: readonly number[], opts: BackwardOptions): Steps<BackwardResult> {
  if (sync.exchange) return (yield* call(exchangedBackwardCall(sync.exchange, sync.count, dy, x, shape, opts))).result;
  const C = opts.saveMean.length;
  // SPEC section 7: with a ReLU, the sums of its gradient.
  const own = yield* call(sumsCall(dy, x, shape, { axis: opts.axis, saveMean: opts.saveMean, activation: opts.activation, reluMask: opts.reluMask }));
  const total = new Float64Array(2 * C);
  total.set(own.sumDy);
  total.set(own.sumDyXmu, C);
  yield* call(reduceCall(sync.collective, total));
  const sums = { count: sync.count, sumDy: total.subarray(0, C), sumDyXmu: total.subarray(C) };
  return yield* call(backwardCall(dy, x, shape, { ...opts, sums, localSums: own }));
}
