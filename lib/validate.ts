/**
 * The one place where arguments are checked (SPEC section 4), for both backends. Every check
 * runs before anything is allocated or written; each option is read exactly once, so getters
 * and valueOf tricks cannot change a value between its check and its use.
 */
import { BatchNormRangeError, BatchNormTypeError, describe, rangeError, typeError } from './errors';
import type { BackwardOptions, ForwardInferenceOptions, ForwardTrainOptions } from './types';
import { overwrittenOutput, zeroedOutput } from './outputs';
import type { BackwardPlan, Geometry, InferencePlan, TrainPlan } from './plan';

// The intrinsic typed-array accessors: an instance cannot shadow them with own properties.
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const intrinsic = (key: PropertyKey) =>
  Object.getOwnPropertyDescriptor(typedArrayProto, key)!.get! as (this: unknown) => unknown;
const tagOf = intrinsic(Symbol.toStringTag);
const lengthOf = intrinsic('length') as (this: Float32Array) => number;
const byteOffsetOf = intrinsic('byteOffset') as (this: Float32Array) => number;
const bufferOf = intrinsic('buffer') as (this: Float32Array) => ArrayBufferLike;

// ArrayBuffer.prototype.resizable (Node 20+); it throws for a SharedArrayBuffer.
const resizableOf = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'resizable')?.get;

/**
 * Whether the array's buffer is a resizable ArrayBuffer: one that can shrink, and its memory
 * be decommitted, while an async call computes on it. (Growable SharedArrayBuffers only grow,
 * in place, and are fine.)
 */
function isResizable(a: Float32Array): boolean {
  if (!resizableOf) return false;
  try {
    return resizableOf.call(bufferOf.call(a)) === true;
  } catch {
    return false; // a SharedArrayBuffer
  }
}

function isFloat32Array(v: unknown): v is Float32Array {
  return ArrayBuffer.isView(v) && tagOf.call(v) === 'Float32Array';
}

function isDetached(a: Float32Array): boolean {
  if (lengthOf.call(a) !== 0) return false;
  const buffer = bufferOf.call(a);
  if (buffer.byteLength !== 0) return false;
  if ('detached' in buffer) return Boolean((buffer as { detached?: boolean }).detached);
  try {
    new Uint8Array(buffer); // throws a TypeError on a detached buffer
    return false;
  } catch {
    return true;
  }
}

/** A Float32Array that is not detached; `null` when absent and optional. */
function float32(value: unknown, name: string, optional: true): Float32Array | null;
function float32(value: unknown, name: string, optional: false): Float32Array;
function float32(value: unknown, name: string, optional: boolean): Float32Array | null {
  if ((value === undefined || value === null) && optional) return null;
  if (!isFloat32Array(value)) {
    throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a Float32Array', name, value);
  }
  if (isDetached(value)) {
    throw new BatchNormTypeError(
      'ERR_BATCHNORM_DETACHED',
      `Expected an attached Float32Array for ${name} but received one whose buffer is detached`,
    );
  }
  if (isResizable(value)) {
    throw new BatchNormTypeError(
      'ERR_BATCHNORM_INVALID_TYPE',
      `Expected a Float32Array on a fixed-length buffer for ${name} but received one on a resizable ArrayBuffer`,
    );
  }
  return value;
}

/** A Float32Array (or absent, when optional) of exactly `length` elements. */
function sized(value: unknown, name: string, length: number, optional: true): Float32Array | null;
function sized(value: unknown, name: string, length: number, optional: false): Float32Array;
function sized(value: unknown, name: string, length: number, optional: boolean) {
  const a = optional ? float32(value, name, true) : float32(value, name, false);
  if (a !== null && lengthOf.call(a) !== length) {
    throw rangeError(
      'ERR_BATCHNORM_LENGTH_MISMATCH',
      `a Float32Array of length ${length}`,
      name,
      `length ${lengthOf.call(a)}`,
    );
  }
  return a;
}

function number(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a number', name, value);
  return value;
}

function boolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a boolean', name, value);
  return value;
}

function eps(value: unknown, name: string): number {
  const e = number(value, name, 1e-5);
  if (!(e > 0 && Number.isFinite(e))) {
    throw rangeError('ERR_BATCHNORM_INVALID_EPS', 'a finite number > 0', name, describe(e));
  }
  return e;
}

/** Reads the listed keys of an options object once each, into a plain snapshot. */
function readOptions(opts: unknown, keys: readonly string[]): Record<string, unknown> {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== 'object' || isArray(opts)) {
    throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'an options object', 'opts', opts);
  }
  const snapshot: Record<string, unknown> = {};
  for (const key of keys) {
    try {
      snapshot[key] = (opts as Record<string, unknown>)[key];
    } catch (cause) {
      const e = new BatchNormTypeError(
        'ERR_BATCHNORM_INVALID_TYPE',
        `Expected a readable value for opts.${key} but reading it threw: ${describe(cause)}`,
      );
      (e as Error & { cause?: unknown }).cause = cause;
      throw e;
    }
  }
  return snapshot;
}

/**
 * The most dimensions a shape may have (NumPy's limit too). It bounds the reads a hostile shape
 * can demand: a sparse array or a Proxy may claim 2^32 - 1 elements.
 */
const MAX_RANK = 64;

/** Array.isArray, false for a revoked Proxy (where Array.isArray throws). */
function isArray(value: unknown): value is unknown[] {
  try {
    return Array.isArray(value);
  } catch {
    return false;
  }
}

/** Reads `shape` once, its length and then each element, checking each as it is read. */
function readShape(shape: unknown): number[] {
  const unreadable = (cause: unknown) =>
    typeError('ERR_BATCHNORM_INVALID_SHAPE', 'a readable array of non-negative integers', 'shape', cause);
  if (!isArray(shape)) {
    throw typeError('ERR_BATCHNORM_INVALID_SHAPE', 'an array of non-negative integers', 'shape', shape);
  }
  let rank: unknown;
  try {
    rank = shape.length;
  } catch (cause) {
    throw unreadable(cause);
  }
  if (typeof rank !== 'number') throw unreadable(rank);
  if (!(rank <= MAX_RANK)) {
    throw rangeError('ERR_BATCHNORM_INVALID_SHAPE', `a shape of rank 2 to ${MAX_RANK}`, 'shape', `rank ${rank}`);
  }
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d: unknown;
    try {
      d = shape[i];
    } catch (cause) {
      throw unreadable(cause);
    }
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw typeError('ERR_BATCHNORM_INVALID_SHAPE', 'a non-negative safe integer', `shape[${i}]`, d);
    }
    dims.push(d);
  }
  if (dims.length < 2) {
    throw rangeError('ERR_BATCHNORM_INVALID_SHAPE', `a shape of rank 2 to ${MAX_RANK}`, 'shape', `rank ${dims.length}`);
  }
  return dims;
}

/** Checks `shape` and `axis` against the data length and returns the geometry. */
export function geometry(shape: unknown, axisOption: unknown, length: number): Geometry {
  const dims = readShape(shape);
  const axisValue = number(axisOption, 'opts.axis', 1);
  const rank = dims.length;
  if (!Number.isInteger(axisValue) || axisValue < -rank || axisValue >= rank) {
    throw rangeError('ERR_BATCHNORM_INVALID_AXIS', `an integer in [${-rank}, ${rank - 1}]`, 'opts.axis', describe(axisValue));
  }
  const axis = axisValue < 0 ? axisValue + rank : axisValue;
  const product = (ds: number[]) => ds.reduce((p, d) => p * d, 1);
  const size = product(dims);
  if (size !== length) {
    throw rangeError(
      'ERR_BATCHNORM_SHAPE_MISMATCH',
      `a shape whose product equals the data length ${length}`,
      'shape',
      `[${dims.join(', ')}] (product ${size})`,
    );
  }
  return {
    outer: product(dims.slice(0, axis)),
    channels: dims[axis]!,
    inner: product(dims.slice(axis + 1)),
  };
}

/** An array argument, for the overlap check. */
export interface Named {
  name: string;
  array: Float32Array | null;
  written: boolean;
}

/**
 * Rejects a written array that shares memory with any other argument, unless it is the very
 * same range and the pair is the permitted in-place one (`out` = `x`, `dx` = `dy`; none when
 * `inPlace` is null).
 */
export function checkOverlaps(arrays: Named[], inPlace: [string, string] | null) {
  const present = arrays.filter((a): a is Named & { array: Float32Array } => a.array !== null);
  for (let i = 0; i < present.length; i++) {
    for (let j = i + 1; j < present.length; j++) {
      const a = present[i]!;
      const b = present[j]!;
      if (!(a.written || b.written) || bufferOf.call(a.array) !== bufferOf.call(b.array)) continue;
      const aStart = byteOffsetOf.call(a.array), aEnd = aStart + 4 * lengthOf.call(a.array);
      const bStart = byteOffsetOf.call(b.array), bEnd = bStart + 4 * lengthOf.call(b.array);
      if (aStart >= bEnd || bStart >= aEnd) continue;
      const same = aStart === bStart && aEnd === bEnd;
      const pair = [a.name, b.name].sort().join();
      if (same && inPlace && pair === [...inPlace].sort().join()) continue;
      throw new BatchNormRangeError(
        'ERR_BATCHNORM_OVERLAP',
        `Expected ${a.name} and ${b.name} not to overlap in memory but they share bytes ` +
          `[${Math.max(aStart, bStart)}, ${Math.min(aEnd, bEnd)}) of one buffer` +
          (same ? '' : ' (only an identical in-place pair is allowed)'),
      );
    }
  }
}

const TRAIN_KEYS = ['axis', 'gamma', 'beta', 'eps', 'momentum', 'runningMean', 'runningVar', 'unbiased', 'out', 'saveMean', 'saveInvStd'] as const;
const INFERENCE_KEYS = ['axis', 'gamma', 'beta', 'eps', 'runningMean', 'runningVar', 'out'] as const;
const BACKWARD_KEYS = ['axis', 'gamma', 'beta', 'saveMean', 'saveInvStd', 'useGlobalStats', 'dx', 'dgamma', 'dbeta'] as const;

export function planForwardTrain(xArg: unknown, shape: unknown, opts: ForwardTrainOptions | undefined): TrainPlan {
  const x = float32(xArg, 'x', false);
  const o = readOptions(opts, TRAIN_KEYS);
  const g = geometry(shape, o.axis, lengthOf.call(x));
  const n = lengthOf.call(x);
  const C = g.channels;
  const gamma = sized(o.gamma, 'opts.gamma', C, true);
  const beta = sized(o.beta, 'opts.beta', C, true);
  const e = eps(o.eps, 'opts.eps');
  const momentum = number(o.momentum, 'opts.momentum', 0.1);
  if (!(momentum >= 0 && momentum <= 1)) {
    throw rangeError('ERR_BATCHNORM_INVALID_MOMENTUM', 'a number in [0, 1]', 'opts.momentum', describe(momentum));
  }
  const runningMean = sized(o.runningMean, 'opts.runningMean', C, true);
  const runningVar = sized(o.runningVar, 'opts.runningVar', C, true);
  const unbiased = boolean(o.unbiased, 'opts.unbiased', true);
  const out = sized(o.out, 'opts.out', n, true);
  const saveMean = sized(o.saveMean, 'opts.saveMean', C, true);
  const saveInvStd = sized(o.saveInvStd, 'opts.saveInvStd', C, true);
  if (g.outer * g.inner < 2) {
    throw rangeError(
      'ERR_BATCHNORM_TOO_FEW_VALUES',
      'more than 1 value per channel when training',
      'x',
      `${g.outer * g.inner} value(s) per channel (${g.outer} outer x ${g.inner} inner)`,
    );
  }
  checkOverlaps(
    [
      { name: 'x', array: x, written: false },
      { name: 'opts.gamma', array: gamma, written: false },
      { name: 'opts.beta', array: beta, written: false },
      { name: 'opts.runningMean', array: runningMean, written: true },
      { name: 'opts.runningVar', array: runningVar, written: true },
      { name: 'opts.out', array: out, written: true },
      { name: 'opts.saveMean', array: saveMean, written: true },
      { name: 'opts.saveInvStd', array: saveInvStd, written: true },
    ],
    ['x', 'opts.out'],
  );
  return {
    g, x, gamma, beta, eps: e, momentum, runningMean, runningVar, unbiased,
    y: out ?? overwrittenOutput(n, 'y'),
    saveMean: saveMean ?? zeroedOutput(C, 'saveMean'),
    saveInvStd: saveInvStd ?? zeroedOutput(C, 'saveInvStd'),
  };
}

export function planForwardInference(xArg: unknown, shape: unknown, opts: ForwardInferenceOptions | undefined): InferencePlan {
  const x = float32(xArg, 'x', false);
  const o = readOptions(opts, INFERENCE_KEYS);
  const g = geometry(shape, o.axis, lengthOf.call(x));
  const n = lengthOf.call(x);
  const C = g.channels;
  const gamma = sized(o.gamma, 'opts.gamma', C, true);
  const beta = sized(o.beta, 'opts.beta', C, true);
  const e = eps(o.eps, 'opts.eps');
  const runningMean = sized(o.runningMean, 'opts.runningMean', C, false);
  const runningVar = sized(o.runningVar, 'opts.runningVar', C, false);
  const out = sized(o.out, 'opts.out', n, true);
  checkOverlaps(
    [
      { name: 'x', array: x, written: false },
      { name: 'opts.gamma', array: gamma, written: false },
      { name: 'opts.beta', array: beta, written: false },
      { name: 'opts.runningMean', array: runningMean, written: false },
      { name: 'opts.runningVar', array: runningVar, written: false },
      { name: 'opts.out', array: out, written: true },
    ],
    ['x', 'opts.out'],
  );
  return { g, x, gamma, beta, eps: e, runningMean, runningVar, y: out ?? overwrittenOutput(n, 'y') };
}

export function planBackward(dyArg: unknown, xArg: unknown, shape: unknown, opts: BackwardOptions | undefined): BackwardPlan {
  const dy = float32(dyArg, 'dy', false);
  const x = float32(xArg, 'x', false);
  const o = readOptions(opts, BACKWARD_KEYS);
  const n = lengthOf.call(x);
  const g = geometry(shape, o.axis, n);
  if (lengthOf.call(dy) !== n) {
    throw rangeError('ERR_BATCHNORM_LENGTH_MISMATCH', `a Float32Array of length ${n} (the length of x)`, 'dy', `length ${lengthOf.call(dy)}`);
  }
  const C = g.channels;
  const gamma = sized(o.gamma, 'opts.gamma', C, true);
  const beta = sized(o.beta, 'opts.beta', C, true); // accepted for symmetry; backward does not use it
  const saveMean = sized(o.saveMean, 'opts.saveMean', C, false);
  const saveInvStd = sized(o.saveInvStd, 'opts.saveInvStd', C, false);
  const useGlobalStats = boolean(o.useGlobalStats, 'opts.useGlobalStats', false);
  const dx = sized(o.dx, 'opts.dx', n, true);
  const dgamma = sized(o.dgamma, 'opts.dgamma', C, true);
  const dbeta = sized(o.dbeta, 'opts.dbeta', C, true);
  checkOverlaps(
    [
      { name: 'dy', array: dy, written: false },
      { name: 'x', array: x, written: false },
      { name: 'opts.gamma', array: gamma, written: false },
      { name: 'opts.beta', array: beta, written: false },
      { name: 'opts.saveMean', array: saveMean, written: false },
      { name: 'opts.saveInvStd', array: saveInvStd, written: false },
      { name: 'opts.dx', array: dx, written: true },
      { name: 'opts.dgamma', array: dgamma, written: true },
      { name: 'opts.dbeta', array: dbeta, written: true },
    ],
    ['dy', 'opts.dx'],
  );
  return {
    g, dy, x, gamma, saveMean, saveInvStd, useGlobalStats,
    dx: dx ?? overwrittenOutput(n, 'dx'),
    dgamma: dgamma ?? zeroedOutput(C, 'dgamma'),
    dbeta: dbeta ?? zeroedOutput(C, 'dbeta'),
  };
}

/** Validates a thread count for setNumThreads. */
export function threadCount(n: unknown): number {
  if (typeof n !== 'number') throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a number', 'n', n);
  if (!Number.isInteger(n) || n < 1 || n > 4096) {
    throw rangeError('ERR_BATCHNORM_INVALID_THREADS', 'an integer in [1, 4096]', 'n', describe(n));
  }
  return n;
}
