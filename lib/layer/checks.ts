/**
 * Argument checks for the layer API, in the package's error style (lib/errors.ts): a
 * `TypeError` for a value of the wrong type, a `RangeError` for one out of range, each with a
 * code and an "Expected <what> for <name> but received <value>" message.
 */
import { describe, rangeError, typeError } from '../errors';
import { onlyKnownOptions } from '../validate';

/**
 * An options object (or `undefined`, read as `{}`); with `known`, one that has no other keys
 * (see onlyKnownOptions).
 */
export function optionsObject<T extends object>(value: T | undefined, name: string, known?: readonly (keyof T & string)[]): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'an options object', name, value);
  }
  if (known) onlyKnownOptions(value, known, name);
  return value;
}

/** A number, or `fallback` when `undefined` (required when there is no fallback). */
export function numberOption(value: unknown, name: string, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number') throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a number', name, value);
  return value;
}

/** A boolean, or `fallback` when `undefined`. */
export function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'a boolean', name, value);
  return value;
}

/** A number in [lo, hi] (NaN is out of range); required when there is no fallback. */
export function numberIn(value: unknown, name: string, fallback: number | undefined, lo: number, hi: number): number {
  const n = numberOption(value, name, fallback);
  if (!(n >= lo && n <= hi)) {
    const what = hi === Infinity ? `a number >= ${lo}` : `a number in [${lo}, ${hi}]`;
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', what, name, describe(n));
  }
  return n;
}

/** A safe integer >= `min`. */
export function integerAtLeast(value: unknown, name: string, min: number): number {
  if (typeof value !== 'number') throw typeError('ERR_BATCHNORM_INVALID_TYPE', 'an integer', name, value);
  if (!Number.isSafeInteger(value) || value < min) {
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', `an integer >= ${min}`, name, describe(value));
  }
  return value;
}

/** One of the listed strings, or `fallback` when `undefined`. */
export function oneOf<T extends string>(value: unknown, name: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!choices.includes(value as T)) {
    const what = choices.map((c) => `'${c}'`).join(' or ');
    if (typeof value !== 'string') throw typeError('ERR_BATCHNORM_INVALID_TYPE', what, name, value);
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', what, name, describe(value));
  }
  return value as T;
}

/** The functions' own checks: a Float32Array on an attached, fixed-length buffer, of the given length (or absent). */
export { float32Array, optionalFloat32Array } from '../validate';
