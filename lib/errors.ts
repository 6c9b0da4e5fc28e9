/**
 * Errors thrown by batchnorm. Every error is a built-in `TypeError` or `RangeError` (so
 * `instanceof` works as users expect) carrying a stable `code` (`ERR_BATCHNORM_...`) and a
 * message that names the argument, what was expected and what was given.
 */

/** The stable codes of every error batchnorm throws. */
export type BatchNormErrorCode =
  | 'ERR_BATCHNORM_INVALID_TYPE'
  | 'ERR_BATCHNORM_DETACHED'
  | 'ERR_BATCHNORM_INVALID_SHAPE'
  | 'ERR_BATCHNORM_SHAPE_MISMATCH'
  | 'ERR_BATCHNORM_INVALID_AXIS'
  | 'ERR_BATCHNORM_LENGTH_MISMATCH'
  | 'ERR_BATCHNORM_INVALID_EPS'
  | 'ERR_BATCHNORM_INVALID_MOMENTUM'
  | 'ERR_BATCHNORM_TOO_FEW_VALUES'
  | 'ERR_BATCHNORM_OVERLAP'
  | 'ERR_BATCHNORM_INVALID_THREADS'
  | 'ERR_BATCHNORM_NATIVE_UNAVAILABLE'
  | 'ERR_BATCHNORM_OUT_OF_MEMORY'
  | 'ERR_BATCHNORM_INVALID_OPTION'
  | 'ERR_BATCHNORM_INVALID_STATE_DICT'
  | 'ERR_BATCHNORM_NO_FORWARD'
  | 'ERR_BATCHNORM_INPUT_OVERWRITTEN'
  | 'ERR_BATCHNORM_BUSY'
  | 'ERR_BATCHNORM_INVALID_COUNT'
  | 'ERR_BATCHNORM_INVALID_PARTS'
  | 'ERR_BATCHNORM_COLLECTIVE_TIMEOUT'
  | 'ERR_BATCHNORM_COLLECTIVE_ABORTED'
  | 'ERR_BATCHNORM_COLLECTIVE_MISMATCH'
  | 'ERR_BATCHNORM_COLLECTIVE_ASYNC';

/** A `TypeError` with a batchnorm error code. */
export class BatchNormTypeError extends TypeError {
  readonly code: BatchNormErrorCode;
  constructor(code: BatchNormErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A `RangeError` with a batchnorm error code. */
export class BatchNormRangeError extends RangeError {
  readonly code: BatchNormErrorCode;
  constructor(code: BatchNormErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * An `Error` for a call that is valid in itself but not in the layer's current state: a
 * `backward` with no `forward` before it, or a call while an async call is still running.
 */
export class BatchNormStateError extends Error {
  readonly code: BatchNormErrorCode;
  constructor(code: BatchNormErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * An `Error` from a collective (lib/collective/): a replica that did not arrive in time, a
 * group that was aborted, replicas that disagree on a call, or a synchronous layer call with
 * an asynchronous collective.
 */
export class BatchNormCollectiveError extends Error {
  readonly code: BatchNormErrorCode;
  constructor(code: BatchNormErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Describes a received value for an error message: `1.5 (number)`, `Float64Array(3)`, ... */
export function describe(value: unknown): string {
  try {
    return describeUnsafe(value);
  } catch {
    return 'a value that could not be inspected'; // a Proxy or a getter that throws
  }
}

function describeUnsafe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  const tag = Object.prototype.toString.call(value).slice(8, -1);
  if (ArrayBuffer.isView(value)) {
    return value instanceof DataView ? 'DataView' : `${tag}(${(value as Float32Array).length})`;
  }
  if (Array.isArray(value)) return `Array(${value.length})`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${String(value)} (${typeof value})`;
  }
  if (typeof value === 'string') {
    return `${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)} (string)`;
  }
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  return `an object (${tag})`;
}

/** `Expected <what> for <name> but received <value>`. */
export function expected(what: string, name: string, received: string): string {
  return `Expected ${what} for ${name} but received ${received}`;
}

export function typeError(code: BatchNormErrorCode, what: string, name: string, value: unknown) {
  return new BatchNormTypeError(code, expected(what, name, describe(value)));
}

export function rangeError(code: BatchNormErrorCode, what: string, name: string, received: string) {
  return new BatchNormRangeError(code, expected(what, name, received));
}
