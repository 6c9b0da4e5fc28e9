/**
 * The layer's steps are written once, as generators that yield kernel calls, and run either
 * on the calling thread (`runSync`) or with each kernel off it (`runAsync`). So the sync and
 * async layer methods share every line of their logic.
 *
 * Steps build each call's options as one object literal, not from spreads of smaller objects:
 * every spread after the first is a runtime call, and the spread-built options of forward and
 * backward cost 12-16 us of a 40 us step on a [32, 64] layer (V8 in Node.js 20).
 */
import {
  backward,
  backwardAsync,
  forwardInference,
  forwardInferenceAsync,
  forwardTrain,
  forwardTrainAsync,
} from '../api';
import { backwardSums, backwardSumsAsync, batchMoments, batchMomentsAsync } from '../synchronized';
import type {
  BackwardOptions,
  BackwardResult,
  BackwardSumsOptions,
  BackwardSumsResult,
  BatchMomentsOptions,
  ForwardInferenceOptions,
  ForwardTrainOptions,
  ForwardTrainResult,
  Moments,
} from '../types';

/** One kernel call, runnable on the calling thread or off it. */
export interface KernelCall<R> {
  sync(): R;
  async(): Promise<R>;
}

/** A layer step: yields kernel calls, receives their results, returns T. */
export type Steps<T> = Generator<KernelCall<unknown>, T, unknown>;

/** Runs a kernel call inside a step and gives back its typed result (`yield* call(...)`). */
export function* call<R>(kernel: KernelCall<R>): Generator<KernelCall<unknown>, R, unknown> {
  return (yield kernel) as R;
}

/** Runs every kernel call of `steps` on the calling thread. */
export function runSync<T>(steps: Steps<T>): T {
  let next = steps.next();
  while (!next.done) next = steps.next(next.value.sync());
  return next.value;
}

/** Runs `steps`, each kernel call off the JavaScript thread (on the native backend). */
export async function runAsync<T>(steps: Steps<T>): Promise<T> {
  let next = steps.next();
  while (!next.done) next = steps.next(await next.value.async());
  return next.value;
}

/** A {@link forwardTrain} call. */
export function trainCall(x: Float32Array, shape: readonly number[], opts: ForwardTrainOptions): KernelCall<ForwardTrainResult> {
  return { sync: () => forwardTrain(x, shape, opts), async: () => forwardTrainAsync(x, shape, opts) };
}

/** A {@link forwardInference} call. */
export function inferenceCall(x: Float32Array, shape: readonly number[], opts: ForwardInferenceOptions): KernelCall<Float32Array> {
  return { sync: () => forwardInference(x, shape, opts), async: () => forwardInferenceAsync(x, shape, opts) };
}

/** A {@link backward} call. */
export function backwardCall(dy: Float32Array, x: Float32Array, shape: readonly number[], opts: BackwardOptions): KernelCall<BackwardResult> {
  return { sync: () => backward(dy, x, shape, opts), async: () => backwardAsync(dy, x, shape, opts) };
}

/** A {@link batchMoments} call. */
export function momentsCall(x: Float32Array, shape: readonly number[], opts: BatchMomentsOptions): KernelCall<Moments> {
  return { sync: () => batchMoments(x, shape, opts), async: () => batchMomentsAsync(x, shape, opts) };
}

/** A {@link backwardSums} call. */
export function sumsCall(dy: Float32Array, x: Float32Array, shape: readonly number[], opts: BackwardSumsOptions): KernelCall<BackwardSumsResult> {
  return { sync: () => backwardSums(dy, x, shape, opts), async: () => backwardSumsAsync(dy, x, shape, opts) };
}
