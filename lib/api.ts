/**
 * The functional API of SPEC section 3.
 *
 * Every function validates its arguments first (lib/validate.ts), identically for both
 * backends, and then runs the native kernels or, where the addon cannot load, the TypeScript
 * ones. Returned arrays are new unless a destination was given, in which case that very array
 * is returned.
 */
import { backend, loaded } from './backend';
import { packageRoot } from './loader';
import { planBackward, planForwardInference, planForwardTrain, threadCount } from './validate';
import { backwardResult, trainResult } from './plan';
import type {
  BackendInfo,
  BackwardOptions,
  BackwardResult,
  ForwardInferenceOptions,
  ForwardTrainOptions,
  ForwardTrainResult,
} from './types';
import { readFileSync } from 'fs';
import { join } from 'path';

const version: string = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')).version;

/** forwardTrain with `activation: 'relu'`: the result has the mask. */
type ReluTrainOptions = ForwardTrainOptions & { activation: 'relu' };
type ReluTrainResult = ForwardTrainResult & { reluMask: Uint8Array };
/** backward asked for the residual's gradient: the result has it. */
type ResidualBackwardOptions = BackwardOptions & { dresidual: Float32Array | true };
type ResidualBackwardResult = BackwardResult & { dresidual: Float32Array };

/**
 * Training-mode forward: normalises `x` with its batch statistics, returns them, and updates
 * `runningMean`/`runningVar` in place when given.
 *
 * With `activation: 'relu'` and/or a `residual` (SPEC section 7), `y = relu(bn(x) + residual)`
 * in the same pass, and the result carries the `reluMask` that {@link backward} needs.
 *
 * @param x dense row-major data of `shape`
 * @param shape at least two dimensions; `opts.axis` (default 1) is the channel axis
 * @throws TypeError / RangeError with a `code`, before anything is written (SPEC section 4)
 */
export function forwardTrain(x: Float32Array, shape: readonly number[], opts: ReluTrainOptions): ReluTrainResult;
export function forwardTrain(x: Float32Array, shape: readonly number[], opts?: ForwardTrainOptions): ForwardTrainResult;
export function forwardTrain(x: Float32Array, shape: readonly number[], opts?: ForwardTrainOptions): ForwardTrainResult {
  const p = planForwardTrain(x, shape, opts);
  backend.forwardTrain(p);
  return trainResult(p);
}

/** {@link forwardTrain} computed off the JavaScript thread (on the native backend). */
export async function forwardTrainAsync(x: Float32Array, shape: readonly number[], opts: ReluTrainOptions): Promise<ReluTrainResult>;
export async function forwardTrainAsync(x: Float32Array, shape: readonly number[], opts?: ForwardTrainOptions): Promise<ForwardTrainResult>;
export async function forwardTrainAsync(x: Float32Array, shape: readonly number[], opts?: ForwardTrainOptions): Promise<ForwardTrainResult> {
  const p = planForwardTrain(x, shape, opts);
  await backend.forwardTrainAsync(p);
  return trainResult(p);
}

/**
 * Inference-mode forward: `y = gamma * (x - runningMean) / sqrt(runningVar + eps) + beta`,
 * then `opts.residual` added and `opts.activation` applied (SPEC section 7) in the same pass.
 *
 * @throws TypeError / RangeError with a `code`, before anything is written (SPEC section 4)
 */
export function forwardInference(x: Float32Array, shape: readonly number[], opts: ForwardInferenceOptions): Float32Array {
  const p = planForwardInference(x, shape, opts);
  backend.forwardInference(p);
  return p.y;
}

/** {@link forwardInference} computed off the JavaScript thread (on the native backend). */
export async function forwardInferenceAsync(x: Float32Array, shape: readonly number[], opts: ForwardInferenceOptions): Promise<Float32Array> {
  const p = planForwardInference(x, shape, opts);
  await backend.forwardInferenceAsync(p);
  return p.y;
}

/**
 * Backward pass from the statistics saved by {@link forwardTrain}: gradients of `x`, `gamma`
 * and `beta` given the upstream gradient `dy`. With `activation: 'relu'` and the forward's
 * `reluMask`, `dy` is masked by the ReLU first; `dresidual` asks for the gradient of the
 * forward's `residual` too (SPEC section 7).
 *
 * @throws TypeError / RangeError with a `code`, before anything is written (SPEC section 4)
 */
export function backward(dy: Float32Array, x: Float32Array, shape: readonly number[], opts: ResidualBackwardOptions): ResidualBackwardResult;
export function backward(dy: Float32Array, x: Float32Array, shape: readonly number[], opts: BackwardOptions): BackwardResult;
export function backward(dy: Float32Array, x: Float32Array, shape: readonly number[], opts: BackwardOptions): BackwardResult {
  const p = planBackward(dy, x, shape, opts);
  backend.backward(p);
  return backwardResult(p);
}

/** {@link backward} computed off the JavaScript thread (on the native backend). */
export async function backwardAsync(dy: Float32Array, x: Float32Array, shape: readonly number[], opts: ResidualBackwardOptions): Promise<ResidualBackwardResult>;
export async function backwardAsync(dy: Float32Array, x: Float32Array, shape: readonly number[], opts: BackwardOptions): Promise<BackwardResult>;
export async function backwardAsync(dy: Float32Array, x: Float32Array, shape: readonly number[], opts: BackwardOptions): Promise<BackwardResult> {
  const p = planBackward(dy, x, shape, opts);
  await backend.backwardAsync(p);
  return backwardResult(p);
}

/** Which backend and kernels are in use, and why the JavaScript backend is, when it is. */
export function backendInfo(): BackendInfo {
  if (!loaded.native) return { backend: 'js', isa: 'js', threads: 1, version, fallbackReason: loaded.fallbackReason };
  const info = loaded.native.info();
  return { backend: 'native', isa: info.isa, threads: info.threads, version };
}

/**
 * Sets how many threads the native kernels may use (default: BATCHNORM_NUM_THREADS, else
 * OMP_NUM_THREADS, else the available parallelism). Small tensors always run on one thread.
 * Results do not depend on it. No effect on the JavaScript backend.
 *
 * @param n an integer in [1, 4096]
 * @throws TypeError with a `code` for a non-number; RangeError (`ERR_BATCHNORM_INVALID_THREADS`) for any other number
 */
export function setNumThreads(n: number): void {
  const threads = threadCount(n);
  loaded.native?.setNumThreads(threads);
}
