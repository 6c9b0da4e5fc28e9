/**
 * `batchnorm/tfjs`: TensorFlow.js models on this package's kernels.
 *
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import '@tensorflow/tfjs-backend-wasm';   // if used: import backends before install()
 * import { install } from 'batchnorm/tfjs';
 * install();
 * ```
 *
 * install() takes over, on the `cpu` and `wasm` backends: the FusedBatchNorm kernel
 * (tf.batchNorm and inference-mode BatchNormalization layers; inference-kernel.ts), and the
 * training forward and backward of BatchNormalization layers (layer-patch.ts, through the
 * kernels and gradient of training-kernels.ts). uninstall() puts everything back.
 *
 * @tensorflow/tfjs is an optional peer dependency: only this entry point loads it.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig } from '@tensorflow/tfjs';

import { booleanOption, oneOf, optionsObject } from '../layer/checks';
import { typeError } from '../errors';
import { nativeFusedBatchNorm } from './inference-kernel';
import { patchBatchNormalization } from './layer-patch';
import { SUPPORTED_BACKENDS, type SupportedBackend } from './tensor-memory';
import { trainingGradient, trainingKernels, TRAIN_KERNEL } from './training-kernels';

export type { SupportedBackend } from './tensor-memory';

export interface InstallOptions {
  /**
   * Backends to take over, of `'cpu'` and `'wasm'`. Default: both; either is skipped when it is
   * not registered (its package not imported) when install() runs.
   */
  backends?: readonly SupportedBackend[];
  /** Route training-mode BatchNormalization layers to our training kernels. Default `true`. */
  layers?: boolean;
}

/** What install() took over. */
export interface Installation {
  /** The backends whose kernels now run ours. */
  backends: SupportedBackend[];
  /** Whether training-mode BatchNormalization layers run ours. */
  layers: boolean;
}

interface State extends Installation {
  originals: KernelConfig[];
  unpatch?: () => void;
}

let state: State | undefined;

function backendList(value: unknown): SupportedBackend[] {
  if (value === undefined) return [...SUPPORTED_BACKENDS];
  if (!Array.isArray(value)) throw typeError('ERR_BATCHNORM_INVALID_TYPE', "an array of 'cpu' and 'wasm'", 'options.backends', value);
  return value.map((b, i) => oneOf(b, `options.backends[${i}]`, SUPPORTED_BACKENDS, 'cpu'));
}

/**
 * Runs BatchNorm of TensorFlow.js on this package's kernels (see the module comment). Calling it
 * again replaces the previous installation with the new options.
 *
 * @throws TypeError / RangeError with a `code` for invalid options, before anything changes
 */
export function install(options?: InstallOptions): Installation {
  const opts = optionsObject(options, 'options', ['backends', 'layers']);
  const wanted = backendList(opts.backends);
  const layers = booleanOption(opts.layers, 'options.layers', true);
  uninstall();
  const unpatch = layers ? patchBatchNormalization() : undefined; // first: the one step that can fail
  const backends = wanted.filter((b, i) => wanted.indexOf(b) === i && tf.getKernel(tf.FusedBatchNorm, b) !== undefined);
  const originals = backends.map((b) => tf.getKernel(tf.FusedBatchNorm, b)!);
  for (const original of originals) {
    tf.unregisterKernel(tf.FusedBatchNorm, original.backendName);
    tf.registerKernel(nativeFusedBatchNorm(original));
  }
  for (const b of backends) for (const kernel of trainingKernels(b)) tf.registerKernel(kernel);
  tf.registerGradient(trainingGradient);
  state = { backends, layers, originals, unpatch };
  return { backends: [...backends], layers };
}

/** Restores tfjs's own kernels and BatchNormalization layers. Does nothing when not installed. */
export function uninstall(): void {
  if (!state) return;
  state.unpatch?.();
  for (const original of state.originals) {
    tf.unregisterKernel(tf.FusedBatchNorm, original.backendName);
    tf.registerKernel(original);
  }
  for (const b of state.backends) for (const { kernelName } of trainingKernels(b)) tf.unregisterKernel(kernelName, b);
  tf.unregisterGradient(TRAIN_KERNEL);
  state = undefined;
}
