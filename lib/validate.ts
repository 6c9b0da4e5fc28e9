/**
 * The one place where arguments are checked (SPEC section 4), for both backends. Every check
 * runs before anything is allocated or written; each option is read exactly once, so getters
 * and valueOf tricks cannot change a value between its check and its use.
 */
import { BatchNormRangeError, BatchNormTypeError, describe, rangeError, typeError } from './errors';
import type { Activation, BackwardOptions, BackwardSumsOptions, BatchMomentsOptions, ForwardInferenceOptions, ForwardTrainOptions } from './types';
import { maskOutput, overwrittenOutput, zeroedOutput, zeroedStatistics } from './outputs';
import type { BackwardPlan, Geometry, GivenMoments, GivenSums, InferencePlan, MomentsPlan, SumsPlan, TrainPlan } from './plan';

// The intrinsic typed-array accessors: an instance cannot shadow them with own properties.
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const intrinsic = (key: PropertyKey) =>
  Object.getOwnPropertyDescriptor(typedArrayProto, key)!.get! as (this: unknown) => unknown;
const tagOf = intrinsic(Symbol.toStringTag);
/**
 * The typed arrays the API takes: data in float32, per-channel statistics in float64 (SPEC
 * section 8), the bit-packed ReLU mask in bytes (SPEC section 7).
 */
interface Kinds {
  Float32Array: Float32Array;
  Float64Array: Float64Array;
  Uint8Array: Uint8Array;
}
type Typed = Kinds[keyof Kinds];

const lengthOf = intrinsic('length') as (this: Typed) => number;
const byteOffsetOf = intrinsic('byteOffset') as (this: Typed) => number;
const byteLengthOf = intrinsic('byteLength') as (this: Typed) => number;
const bufferOf = intrinsic('buffer') as (this: Typed) => ArrayBufferLike;

// ArrayBuffer.prototype.resizable (Node 20+); it throws for a SharedArrayBuffer.
const resizableOf = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'resizable')?.get;

/**
 * Whether the array's buffer is a resizable ArrayBuffer: one that can shrink, and its memory
 * be decommitted, while an async call computes on it. (Growable SharedArrayBuffers only grow,
 * in place, and are fine.)
 */
function isResizable(a: Typed): boolean {
  if (!resizableOf) return false;
  try {
    return resizableOf.call(bufferOf.call(a)) === true;
  } catch {
    return false; // a SharedArrayBuffer
  }
}

function isDetached(a: Typed): boolean {
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

function detachedError(kind: string, name: string): BatchNormTypeError {
  return new BatchNormTypeError('ERR_BATCHNORM_DETACHED', `Expected an attached ${kind} for ${name} but received one whose buffer is detached`);
}

/**
 * Throws ERR_BATCHNORM_DETACHED for the first of `arrays` whose buffer is detached. The plans
 * check again, once every option has been read, that no array checked before has been detached
 * since: a getter on `shape` or on a nested option (moments, sums) runs after earlier arrays
 * passed their checks, and may transfer one's buffer away. The layer checks the arrays it keeps
 * between calls (lib/layer/batchnorm.ts).
 */
export function checkStillAttached(arrays: readonly { name: string; array: Typed | null }[]): void {
  for (const { name, array } of arrays) {
    if (array !== null && isDetached(array)) throw detachedError(tagOf.call(array) as string, name);
  }
}

/** A typed array of `kind` that is not detached; `null` when absent and optional. */
function typedArray<K extends keyof Kinds>(value: unknown, name: string, kind: K, optional: boolean): Kinds[K] | null {
  if ((value === undefined || value === null) && optional) return null;
  if (!(ArrayBuffer.isView(value) && tagOf.call(value) === kind)) {
    throw typeError('ERR_BATCHNORM_INVALID_TYPE', `a ${kind}`, name, value);
  }
  const a = value as Kinds[K];
  if (isDetached(a)) throw detachedError(kind, name);
  if (isResizable(a)) {
    throw new BatchNormTypeError(
      'ERR_BATCHNORM_INVALID_TYPE',
      `Expected a ${kind} on a fixed-length buffer for ${name} but received one on a resizable ArrayBuffer`,
    );
  }
  return a;
}

function float32(value: unknown, name: string, optional: true): Float32Array | null;
function float32(value: unknown, name: string, optional: false): Float32Array;
function float32(value: unknown, name: string, optional: boolean): Float32Array | null {
  return typedArray(value, name, 'Float32Array', optional);
}

/**
 * A Float32Array on an attached, fixed-length buffer, of exactly `length` elements when a length
 * is given: the functions' check, for the layer's arguments (lib/layer/).
 */
export function float32Array(value: unknown, name: string, length?: number): Float32Array {
  return length === undefined ? float32(value, name, false) : sizedArray(value, name, 'Float32Array', length, false)!;
}

/** {@link float32Array} of `length` elements, or null when absent (undefined or null), as the functions' options. */
export function optionalFloat32Array(value: unknown, name: string, length: number): Float32Array | null {
  return sized(value, name, length, true);
}

/** A Uint8Array (a Node.js Buffer counts) on an attached, fixed-length buffer: encoded bytes (lib/layer/state-codec.ts). */
export function uint8Array(value: unknown, name: string): Uint8Array {
  return typedArray(value, name, 'Uint8Array', false)!;
}

/** A Float64Array that is not detached (a collective's data, lib/collective/). */
export function float64Array(value: unknown, name: string): Float64Array {
  return typedArray(value, name, 'Float64Array', false)!;
}

/** A typed array of `kind` (or absent, when optional) of exactly `length` elements. */
function sizedArray<K extends keyof Kinds>(value: unknown, name: string, kind: K, length: number, optional: boolean): Kinds[K] | null {
  const a = typedArray(value, name, kind, optional);
  if (a !== null && lengthOf.call(a) !== length) {
    throw rangeError('ERR_BATCHNORM_LENGTH_MISMATCH', `a ${kind} of length ${length}`, name, `length ${lengthOf.call(a)}`);
  }
  return a;
}

/** A Float32Array (or absent, when optional) of exactly `length` elements. */
function sized(value: unknown, name: string, length: number, optional: true): Float32Array | null;
function sized(value: unknown, name: string, length: number, optional: false): Float32Array;
function sized(value: unknown, name: string, length: number, optional: boolean) {
  return sizedArray(value, name, 'Float32Array', length, optional);
}

/** A Float64Array (or absent, when optional) of exactly `length` elements. */
function sized64(value: unknown, name: string, length: number, optional: true): Float64Array | null;
function sized64(value: unknown, name: string, length: number, optional: false): Float64Array;
function sized64(value: unknown, name: string, length: number, optional: boolean) {
  return sizedArray(value, name, 'Float64Array', length, optional);
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

/** `name` (a property, or an object's keys) threw when read: a getter or a Proxy trap. */
function unreadable(what: string, name: string, cause: unknown): BatchNormTypeError {
  const e = new BatchNormTypeError('ERR_BATCHNORM_INVALID_TYPE', `Expected ${what} for ${name} but reading it threw: ${describe(cause)}`);
  (e as Error & { cause?: unknown }).cause = cause;
  return e;
}

/** Reads the listed keys of an object once each, into a plain snapshot; `what` describes the object. */
function readObject(value: unknown, keys: readonly string[], name: string, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || isArray(value)) {
    throw typeError('ERR_BATCHNORM_INVALID_TYPE', what, name, value);
  }
  const snapshot: Record<string, unknown> = {};
  for (const key of keys) {
    try {
      snapshot[key] = (value as Record<string, unknown>)[key];
    } catch (cause) {
      throw unreadable('a readable value', `${name}.${key}`, cause);
    }
  }
  return snapshot;
}

/**
 * Refuses the own keys of options object `o` that are not among `known`: a misspelt option
 * (`epsilon` for `eps`, say) would otherwise be ignored without a word, where PyTorch, Keras and
 * TensorFlow.js refuse an unknown argument.
 */
export function onlyKnownOptions(o: object, known: readonly string[], name: string): void {
  let keys: string[];
  try {
    keys = Object.keys(o);
  } catch (cause) {
    throw unreadable('an object with readable keys', name, cause);
  }
  const unknown = keys.filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', `only the options ${known.join(', ')}`, name, `unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}`);
  }
}

/** Reads the listed keys of an options object that has no key unknown to every call (`undefined` reads as `{}`). */
function readOptions(opts: unknown, keys: readonly string[]): Record<string, unknown> {
  if (opts === undefined) return {};
  const o = readObject(opts, keys, 'opts', 'an options object');
  onlyKnownOptions(opts as object, ANY_CALLS_KEYS, 'opts');
  return o;
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
  array: Typed | null;
  written: boolean;
  /** Read, but like a written array it may share memory only as an allowed in-place pair. */
  alone?: boolean;
}

/**
 * Rejects a written (or `alone`) array that shares memory with any other argument, unless it
 * is the very same range and the pair is one of the permitted in-place ones in `inPlace`
 * (`out` = `x`, `dx` = `dy`, ...). Every plan calls it last, after all its reads: first it
 * checks that none of the arrays was detached meanwhile.
 */
export function checkOverlaps(arrays: Named[], inPlace: ReadonlyArray<[string, string]>) {
  checkStillAttached(arrays);
  const present = arrays.filter((a): a is Named & { array: Typed } => a.array !== null);
  const allowed = (a: Named, b: Named) => inPlace.some(([p, q]) => (p === a.name && q === b.name) || (p === b.name && q === a.name));
  const guarded = (a: Named) => a.written || a.alone === true;
  for (let i = 0; i < present.length; i++) {
    for (let j = i + 1; j < present.length; j++) {
      const a = present[i]!;
      const b = present[j]!;
      if (!(guarded(a) || guarded(b)) || bufferOf.call(a.array) !== bufferOf.call(b.array)) continue;
      const aStart = byteOffsetOf.call(a.array), aEnd = aStart + byteLengthOf.call(a.array);
      const bStart = byteOffsetOf.call(b.array), bEnd = bStart + byteLengthOf.call(b.array);
      if (aStart >= bEnd || bStart >= aEnd) continue;
      const same = aStart === bStart && aEnd === bEnd;
      if (same && allowed(a, b)) continue;
      throw new BatchNormRangeError(
        'ERR_BATCHNORM_OVERLAP',
        `Expected ${a.name} and ${b.name} not to overlap in memory but they share bytes ` +
          `[${Math.max(aStart, bStart)}, ${Math.min(aEnd, bEnd)}) of one buffer` +
          (same ? '' : ' (only an identical in-place pair is allowed)'),
      );
    }
  }
}

/** Whether `a` and `b` are the very same range of one buffer (an in-place pair). */
export function sameMemory(a: Typed, b: Typed): boolean {
  return bufferOf.call(a) === bufferOf.call(b) && byteOffsetOf.call(a) === byteOffsetOf.call(b) && byteLengthOf.call(a) === byteLengthOf.call(b);
}

/**
 * Elements [begin, end) of `a` as a plain Float32Array on the same memory. Not `a.subarray()`,
 * which builds its result with the constructor of a subclass's Symbol.species: one that takes
 * other arguments (`constructor(n) { super(n) }` views the whole buffer) or makes another type.
 */
export function view(a: Float32Array, begin: number, end: number): Float32Array {
  return new Float32Array(bufferOf.call(a), byteOffsetOf.call(a) + begin * Float32Array.BYTES_PER_ELEMENT, end - begin);
}

const ACTIVATIONS: readonly Activation[] = ['identity', 'relu'];

/** SPEC section 7's `activation`: absent means `'identity'`. */
function activation(value: unknown, name: string): Activation {
  if (value === undefined) return 'identity';
  const what = ACTIVATIONS.map((a) => `'${a}'`).join(' or ');
  if (typeof value !== 'string') throw typeError('ERR_BATCHNORM_INVALID_TYPE', what, name, value);
  if (!(ACTIVATIONS as readonly string[]).includes(value)) throw rangeError('ERR_BATCHNORM_INVALID_OPTION', what, name, describe(value));
  return value as Activation;
}

/** Bytes of the bit-packed ReLU mask of `n` elements. */
export const maskBytes = (n: number) => Math.ceil(n / 8);

/** The ReLU mask of `n` elements: only with relu (required there when `required`). */
function reluMask(value: unknown, name: string, n: number, relu: boolean, required: boolean): Uint8Array | null {
  if (!relu) {
    if (value === undefined || value === null) return null;
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', "no reluMask without activation 'relu'", name, describe(value));
  }
  return sizedArray(value, name, 'Uint8Array', maskBytes(n), !required);
}

/** `dresidual`: a destination of `n` floats, `true` (allocate one) or absent (undefined or null, as every optional array) / `false`. */
function dresidualOption(value: unknown, name: string, n: number): Float32Array | true | null {
  if (value === undefined || value === null || value === false) return null;
  if (value === true) return true;
  if (!(ArrayBuffer.isView(value) && tagOf.call(value) === 'Float32Array')) {
    throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a Float32Array or a boolean', name, value);
  }
  return sized(value, name, n, false);
}

/** The backward's gradient mask (backward, backwardSums): `activation` and `reluMask` read together. */
function gradientMask(o: Record<string, unknown>, n: number): Uint8Array | null {
  const relu = activation(o.activation, 'opts.activation') === 'relu';
  return reluMask(o.reluMask, 'opts.reluMask', n, relu, true);
}

/** A count of values per channel: a non-negative safe integer. */
function count(value: unknown, name: string): number {
  if (typeof value !== 'number') throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a number', name, value);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw rangeError('ERR_BATCHNORM_INVALID_COUNT', 'a non-negative safe integer', name, describe(value));
  }
  return value;
}

/**
 * A batch's values per channel taken from given statistics (`moments.count`, `sums.count`):
 * they cover this batch, so they are at least its own M.
 */
function coveringCount(value: unknown, name: string, g: Geometry): number {
  const n = count(value, name);
  const M = g.outer * g.inner;
  if (g.channels > 0 && n < M) {
    throw rangeError('ERR_BATCHNORM_INVALID_COUNT', `a count of at least this batch's ${M} values per channel`, name, describe(n));
  }
  return n;
}

/** `{ count, mean: Float64Array(C), m2: Float64Array(C) }`; C from `mean` when null. */
function momentsObject(value: unknown, name: string, C: number | null): GivenMoments {
  const o = readObject(value, ['count', 'mean', 'm2'], name, 'moments { count, mean, m2 }');
  const n = count(o.count, `${name}.count`);
  const mean = C === null ? typedArray(o.mean, `${name}.mean`, 'Float64Array', false)! : sized64(o.mean, `${name}.mean`, C, false);
  return { count: n, mean, m2: sized64(o.m2, `${name}.m2`, lengthOf.call(mean), false) };
}

/** `{ sumDy: Float64Array(C), sumDyXmu: Float64Array(C) }`, with a covering `count` for backward's `sums`. */
function sumsObject(value: unknown, name: string, g: Geometry, withCount: true): GivenSums & { count: number };
function sumsObject(value: unknown, name: string, g: Geometry, withCount: false): GivenSums;
function sumsObject(value: unknown, name: string, g: Geometry, withCount: boolean): GivenSums & { count?: number } {
  const keys = withCount ? ['count', 'sumDy', 'sumDyXmu'] : ['sumDy', 'sumDyXmu'];
  const o = readObject(value, keys, name, withCount ? 'sums { count, sumDy, sumDyXmu }' : 'sums { sumDy, sumDyXmu }');
  const n = withCount ? coveringCount(o.count, `${name}.count`, g) : undefined;
  const sumDy = sized64(o.sumDy, `${name}.sumDy`, g.channels, false);
  const sumDyXmu = sized64(o.sumDyXmu, `${name}.sumDyXmu`, g.channels, false);
  return withCount ? { count: n, sumDy, sumDyXmu } : { sumDy, sumDyXmu };
}

const FUSED_KEYS = ['activation', 'residual'] as const;
const TRAIN_KEYS = ['axis', 'gamma', 'beta', 'eps', 'momentum', 'runningMean', 'runningVar', 'unbiased', 'out', 'saveMean', 'saveInvStd', 'moments', ...FUSED_KEYS, 'reluMask'] as const;
const INFERENCE_KEYS = ['axis', 'gamma', 'beta', 'eps', 'runningMean', 'runningVar', 'out', ...FUSED_KEYS] as const;
const BACKWARD_KEYS = ['axis', 'gamma', 'beta', 'saveMean', 'saveInvStd', 'useGlobalStats', 'dx', 'dgamma', 'dbeta', 'sums', 'localSums', 'activation', 'reluMask', 'dresidual'] as const;
const MOMENTS_KEYS = ['axis', 'mean', 'm2'] as const;
const SUMS_KEYS = ['axis', 'saveMean', 'sumDy', 'sumDyXmu', 'activation', 'reluMask'] as const;
/**
 * The options some call takes. Each call refuses any other key (a misspelt `epsilon`), but takes
 * its siblings' options, so that one object can serve several calls: forwardTrain's and
 * forwardInference's parameters, or the statistics given to backwardSums and then backward.
 */
const ANY_CALLS_KEYS = [...new Set([...TRAIN_KEYS, ...INFERENCE_KEYS, ...BACKWARD_KEYS, ...MOMENTS_KEYS, ...SUMS_KEYS])];
/** The in-place pairs of the forward passes: `out` may be `x` or `residual`. */
const FORWARD_IN_PLACE: Array<[string, string]> = [['x', 'opts.out'], ['opts.residual', 'opts.out']];

/**
 * `countedElsewhere`: the values per channel are every replica's, counted (and checked) by the
 * native kernels' exchange (lib/collective/kernel-exchange.ts), not x's own.
 */
export function planForwardTrain(xArg: unknown, shape: unknown, opts: ForwardTrainOptions | undefined, countedElsewhere = false): TrainPlan {
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
  const moments = o.moments === undefined || o.moments === null ? null : momentsObject(o.moments, 'opts.moments', C);
  const relu = activation(o.activation, 'opts.activation') === 'relu';
  const residual = sized(o.residual, 'opts.residual', n, true);
  const mask = reluMask(o.reluMask, 'opts.reluMask', n, relu, false);
  if (moments) {
    coveringCount(moments.count, 'opts.moments.count', g);
    if (moments.count < 2) {
      throw rangeError('ERR_BATCHNORM_TOO_FEW_VALUES', 'more than 1 value per channel when training', 'opts.moments.count', describe(moments.count));
    }
  } else if (g.outer * g.inner < 2 && !countedElsewhere) {
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
      { name: 'opts.moments.mean', array: moments?.mean ?? null, written: false },
      { name: 'opts.moments.m2', array: moments?.m2 ?? null, written: false },
      { name: 'opts.residual', array: residual, written: false, alone: true },
      { name: 'opts.reluMask', array: mask, written: true },
    ],
    FORWARD_IN_PLACE,
  );
  return {
    g, x, gamma, beta, eps: e, momentum, runningMean, runningVar, unbiased, moments, residual, relu,
    y: out ?? overwrittenOutput(n, 'y'),
    saveMean: saveMean ?? zeroedOutput(C, 'saveMean'),
    saveInvStd: saveInvStd ?? zeroedOutput(C, 'saveInvStd'),
    reluMask: relu ? mask ?? maskOutput(maskBytes(n), 'reluMask') : null,
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
  const relu = activation(o.activation, 'opts.activation') === 'relu';
  const residual = sized(o.residual, 'opts.residual', n, true);
  checkOverlaps(
    [
      { name: 'x', array: x, written: false },
      { name: 'opts.gamma', array: gamma, written: false },
      { name: 'opts.beta', array: beta, written: false },
      { name: 'opts.runningMean', array: runningMean, written: false },
      { name: 'opts.runningVar', array: runningVar, written: false },
      { name: 'opts.out', array: out, written: true },
      { name: 'opts.residual', array: residual, written: false, alone: true },
    ],
    FORWARD_IN_PLACE,
  );
  return { g, x, gamma, beta, eps: e, runningMean, runningVar, residual, relu, y: out ?? overwrittenOutput(n, 'y') };
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
  const sums = o.sums === undefined || o.sums === null ? null : sumsObject(o.sums, 'opts.sums', g, true);
  const localSums = o.localSums === undefined || o.localSums === null ? null : sumsObject(o.localSums, 'opts.localSums', g, false);
  if (localSums && !sums) {
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'opts.localSums only together with opts.sums', 'opts.localSums', 'it without opts.sums');
  }
  if (sums && useGlobalStats) {
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'no opts.sums with opts.useGlobalStats (constant statistics need no sums)', 'opts.sums', 'sums and useGlobalStats: true');
  }
  const mask = gradientMask(o, n);
  const dresidual = dresidualOption(o.dresidual, 'opts.dresidual', n);
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
      { name: 'opts.sums.sumDy', array: sums?.sumDy ?? null, written: false },
      { name: 'opts.sums.sumDyXmu', array: sums?.sumDyXmu ?? null, written: false },
      { name: 'opts.localSums.sumDy', array: localSums?.sumDy ?? null, written: false },
      { name: 'opts.localSums.sumDyXmu', array: localSums?.sumDyXmu ?? null, written: false },
      { name: 'opts.reluMask', array: mask, written: false, alone: true },
      { name: 'opts.dresidual', array: dresidual === true ? null : dresidual, written: true },
    ],
    [['dy', 'opts.dx'], ['dy', 'opts.dresidual']],
  );
  return {
    g, dy, x, gamma, saveMean, saveInvStd, useGlobalStats, sums, localSums, reluMask: mask,
    dx: dx ?? overwrittenOutput(n, 'dx'),
    dgamma: dgamma ?? zeroedOutput(C, 'dgamma'),
    dbeta: dbeta ?? zeroedOutput(C, 'dbeta'),
    dresidual: dresidual === true ? overwrittenOutput(n, 'dresidual') : dresidual,
  };
}

export function planBatchMoments(xArg: unknown, shape: unknown, opts: BatchMomentsOptions | undefined): MomentsPlan {
  const x = float32(xArg, 'x', false);
  const o = readOptions(opts, MOMENTS_KEYS);
  const g = geometry(shape, o.axis, lengthOf.call(x));
  const mean = sized64(o.mean, 'opts.mean', g.channels, true);
  const m2 = sized64(o.m2, 'opts.m2', g.channels, true);
  checkOverlaps(
    [
      { name: 'x', array: x, written: false },
      { name: 'opts.mean', array: mean, written: true },
      { name: 'opts.m2', array: m2, written: true },
    ],
    [],
  );
  return { g, x, mean: mean ?? zeroedStatistics(g.channels, 'mean'), m2: m2 ?? zeroedStatistics(g.channels, 'm2') };
}

export function planBackwardSums(dyArg: unknown, xArg: unknown, shape: unknown, opts: BackwardSumsOptions | undefined): SumsPlan {
  const dy = float32(dyArg, 'dy', false);
  const x = float32(xArg, 'x', false);
  const o = readOptions(opts, SUMS_KEYS);
  const n = lengthOf.call(x);
  const g = geometry(shape, o.axis, n);
  if (lengthOf.call(dy) !== n) {
    throw rangeError('ERR_BATCHNORM_LENGTH_MISMATCH', `a Float32Array of length ${n} (the length of x)`, 'dy', `length ${lengthOf.call(dy)}`);
  }
  const C = g.channels;
  const saveMean = sized(o.saveMean, 'opts.saveMean', C, false);
  const sumDy = sized64(o.sumDy, 'opts.sumDy', C, true);
  const sumDyXmu = sized64(o.sumDyXmu, 'opts.sumDyXmu', C, true);
  const mask = gradientMask(o, n);
  checkOverlaps(
    [
      { name: 'dy', array: dy, written: false },
      { name: 'x', array: x, written: false },
      { name: 'opts.saveMean', array: saveMean, written: false },
      { name: 'opts.sumDy', array: sumDy, written: true },
      { name: 'opts.sumDyXmu', array: sumDyXmu, written: true },
      { name: 'opts.reluMask', array: mask, written: false, alone: true },
    ],
    [],
  );
  return { g, dy, x, saveMean, reluMask: mask, sumDy: sumDy ?? zeroedStatistics(C, 'sumDy'), sumDyXmu: sumDyXmu ?? zeroedStatistics(C, 'sumDyXmu') };
}

/** The most parts mergeMoments takes: replicas, not data (and a bound on what a hostile array can demand). */
const MAX_PARTS = 65536;

/** mergeMoments' parts: 1 to MAX_PARTS moments of one channel count, whose counts add up to a safe integer. */
export function planMergeMoments(parts: unknown): GivenMoments[] {
  if (!isArray(parts)) throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'an array of moments { count, mean, m2 }', 'parts', parts);
  let length: unknown;
  try {
    length = parts.length;
  } catch (cause) {
    throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a readable array of moments', 'parts', cause);
  }
  if (typeof length !== 'number' || !(length >= 1 && length <= MAX_PARTS)) {
    throw rangeError('ERR_BATCHNORM_INVALID_PARTS', `an array of 1 to ${MAX_PARTS} moments`, 'parts', `length ${describe(length)}`);
  }
  const out: GivenMoments[] = [];
  let total = 0;
  for (let i = 0; i < length; i++) {
    let part: unknown;
    try {
      part = parts[i];
    } catch (cause) {
      throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a readable array of moments', 'parts', cause);
    }
    const m = momentsObject(part, `parts[${i}]`, i === 0 ? null : lengthOf.call(out[0]!.mean));
    total += m.count;
    if (!Number.isSafeInteger(total)) {
      throw rangeError('ERR_BATCHNORM_INVALID_COUNT', 'counts that add up to a safe integer', `parts[${i}].count`, `a total of ${total}`);
    }
    out.push(m);
  }
  checkStillAttached(out.flatMap((m, i) => [{ name: `parts[${i}].mean`, array: m.mean }, { name: `parts[${i}].m2`, array: m.m2 }]));
  return out;
}

/** Validates a thread count for setNumThreads. */
export function threadCount(n: unknown): number {
  if (typeof n !== 'number') throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a number', 'n', n);
  if (!Number.isInteger(n) || n < 1 || n > 4096) {
    throw rangeError('ERR_BATCHNORM_INVALID_THREADS', 'an integer in [1, 4096]', 'n', describe(n));
  }
  return n;
}
