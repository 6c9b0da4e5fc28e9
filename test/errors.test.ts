/**
 * Every error of SPEC section 4, sync and async, for the operations of sections 3 and 8: the
 * right class, code and message, and nothing written. Runs on the native and the JS backend
 * (same validation for both).
 */
import { describe, expect, test } from 'vitest';

import * as bn from '../lib/index';
import { describeErrorCases, type ErrorCase } from './helpers/error-cases';

const f32 = (n: number, v = 1) => new Float32Array(n).fill(v);
const f64 = (n: number, v = 0) => new Float64Array(n).fill(v);
const moments = (count = 2) => ({ count, mean: f64(2), m2: f64(2, 1) });
const sums = (count = 2) => ({ count, sumDy: f64(2), sumDyXmu: f64(2) });
const detached = () => {
  const a = new Float32Array(4);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
};
const stats = () => ({ saveMean: f32(2, 0), saveInvStd: f32(2) });
const running = () => ({ runningMean: f32(2, 0), runningVar: f32(2) });
const shared = (n: number) => new Float32Array(n + 2);
const revoked = (target: object) => {
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
};
/** An "array" of 2^32 - 1 ones: cheap to make, ruinous to copy. */
const hugeProxy = () => new Proxy([], { get: (t, k) => (k === 'length' ? 2 ** 32 - 1 : typeof k === 'string' ? 1 : undefined) });
/** A valid shape whose length reads as 2^32 - 1 after the first read. */
const growing = (dims: number[]) => {
  let reads = 0;
  return new Proxy(dims, { get: (t, k) => (k === 'length' && reads++ > 0 ? 2 ** 32 - 1 : t[k as keyof typeof t]) });
};

const T = TypeError;
const R = RangeError;
const CASES: ErrorCase[] = [
  // data arguments
  { name: 'x as Float64Array', op: 'forwardTrain', args: () => [new Float64Array(4), [2, 2]], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'for x' },
  { name: 'x as plain array', op: 'forwardTrain', args: () => [[1, 2, 3, 4], [2, 2]], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'Array(4)' },
  { name: 'x as Buffer', op: 'forwardInference', args: () => [Buffer.alloc(16), [2, 2], running()], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'Uint8Array' },
  { name: 'x null', op: 'forwardTrain', args: () => [null, [2, 2]], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'for x' },
  { name: 'x detached', op: 'forwardTrain', args: () => [detached(), [2, 2]], type: T, code: 'ERR_BATCHNORM_DETACHED', mentions: 'detached' },
  { name: 'dy as Float64Array', op: 'backward', args: () => [new Float64Array(4), f32(4), [2, 2], stats()], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'for dy' },
  { name: 'dy wrong length', op: 'backward', args: () => [f32(6), f32(4), [2, 2], stats()], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'dy' },
  // shape and axis
  { name: 'shape a string', op: 'forwardTrain', args: () => [f32(4), '2,2'], type: T, code: 'ERR_BATCHNORM_INVALID_SHAPE', mentions: 'shape' },
  { name: 'shape negative', op: 'forwardTrain', args: () => [f32(4), [-2, -2]], type: T, code: 'ERR_BATCHNORM_INVALID_SHAPE', mentions: 'shape[0]' },
  { name: 'shape fractional', op: 'forwardTrain', args: () => [f32(4), [2, 1.5]], type: T, code: 'ERR_BATCHNORM_INVALID_SHAPE', mentions: 'shape[1]' },
  { name: 'shape NaN', op: 'forwardInference', args: () => [f32(4), [NaN, 2], running()], type: T, code: 'ERR_BATCHNORM_INVALID_SHAPE', mentions: 'shape[0]' },
  { name: 'shape unsafe', op: 'forwardTrain', args: () => [f32(4), [2 ** 53, 2]], type: T, code: 'ERR_BATCHNORM_INVALID_SHAPE', mentions: 'shape[0]' },
  { name: 'shape of strings', op: 'forwardTrain', args: () => [f32(4), ['2', '2']], type: T, code: 'ERR_BATCHNORM_INVALID_SHAPE', mentions: 'shape[0]' },
  { name: 'shape rank 1', op: 'forwardTrain', args: () => [f32(4), [4]], type: R, code: 'ERR_BATCHNORM_INVALID_SHAPE', mentions: 'rank 1' },
  { name: 'shape product mismatch', op: 'forwardTrain', args: () => [f32(4), [2, 3]], type: R, code: 'ERR_BATCHNORM_SHAPE_MISMATCH', mentions: 'product 6' },
  { name: 'shape overflowing product', op: 'forwardTrain', args: () => [f32(4), [2 ** 40, 2 ** 40]], type: R, code: 'ERR_BATCHNORM_SHAPE_MISMATCH', mentions: 'shape' },
  // hostile shapes: each must be read once and cheaply (a Proxy or sparse array may claim 2^32 - 1 elements)
  { name: 'shape a sparse array of length 2^31', op: 'forwardTrain', args: () => [f32(4), Object.assign(new Array(2 ** 31), [2, 2])], type: R, code: 'ERR_BATCHNORM_INVALID_SHAPE', mentions: 'rank 2147483648' },
  { name: 'shape a sparse array with a hole', op: 'forwardTrain', args: () => [f32(4), Object.assign(new Array(3), [2, 2])], type: T, code: 'ERR_BATCHNORM_INVALID_SHAPE', mentions: 'shape[2]' },
  { name: 'shape a Proxy of length 2^32 - 1', op: 'forwardTrain', args: () => [f32(4), hugeProxy()], type: R, code: 'ERR_BATCHNORM_INVALID_SHAPE', mentions: 'rank 4294967295' },
  { name: 'shape of rank 65', op: 'forwardInference', args: () => [f32(4), [2, 2, ...Array(63).fill(1)], running()], type: R, code: 'ERR_BATCHNORM_INVALID_SHAPE', mentions: 'rank 2 to 64' },
  { name: 'shape a revoked Proxy', op: 'forwardTrain', args: () => [f32(4), revoked([2, 2])], type: T, code: 'ERR_BATCHNORM_INVALID_SHAPE', mentions: 'shape' },
  { name: 'shape whose length grows after the first read', op: 'forwardTrain', args: () => [f32(3), growing([1, 3])], type: R, code: 'ERR_BATCHNORM_TOO_FEW_VALUES', mentions: '1 outer x 1 inner' },
  { name: 'axis a string', op: 'forwardTrain', args: () => [f32(4), [2, 2], { axis: '1' }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.axis' },
  { name: 'axis fractional', op: 'forwardTrain', args: () => [f32(4), [2, 2], { axis: 0.5 }], type: R, code: 'ERR_BATCHNORM_INVALID_AXIS', mentions: 'opts.axis' },
  { name: 'axis too large', op: 'backward', args: () => [f32(4), f32(4), [2, 2], { axis: 2, ...stats() }], type: R, code: 'ERR_BATCHNORM_INVALID_AXIS', mentions: '[-2, 1]' },
  { name: 'axis too negative', op: 'forwardTrain', args: () => [f32(4), [2, 2], { axis: -3 }], type: R, code: 'ERR_BATCHNORM_INVALID_AXIS', mentions: 'opts.axis' },
  // options object and per-channel arrays
  { name: 'opts a number', op: 'forwardTrain', args: () => [f32(4), [2, 2], 5], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts' },
  { name: 'opts a revoked Proxy', op: 'forwardTrain', args: () => [f32(4), [2, 2], revoked({})], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts' },
  { name: 'opts missing for inference', op: 'forwardInference', args: () => [f32(4), [2, 2]], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.runningMean' },
  { name: 'gamma wrong length', op: 'forwardTrain', args: () => [f32(4), [2, 2], { gamma: f32(3) }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'opts.gamma' },
  { name: 'beta as plain array', op: 'forwardInference', args: () => [f32(4), [2, 2], { ...running(), beta: [1, 2] }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.beta' },
  { name: 'runningVar wrong length', op: 'forwardInference', args: () => [f32(4), [2, 2], { runningMean: f32(2), runningVar: f32(4) }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'opts.runningVar' },
  { name: 'saveMean missing in backward', op: 'backward', args: () => [f32(4), f32(4), [2, 2], { saveInvStd: f32(2) }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.saveMean' },
  { name: 'saveInvStd detached', op: 'backward', args: () => [f32(4), f32(4), [2, 2], { saveMean: f32(2), saveInvStd: detached() }], type: T, code: 'ERR_BATCHNORM_DETACHED', mentions: 'opts.saveInvStd' },
  { name: 'getter that throws', op: 'forwardTrain', args: () => [f32(4), [2, 2], { get gamma() { throw new Error('boom'); } }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.gamma' },
  // an option that no call takes is refused, not ignored (as PyTorch, Keras and tfjs refuse an unknown argument)
  { name: 'unknown option epsilon (for eps)', op: 'forwardTrain', args: () => [f32(4), [2, 2], { epsilon: 1e-3 }], type: R, code: 'ERR_BATCHNORM_INVALID_OPTION', mentions: "unknown option 'epsilon'" },
  { name: 'unknown option runningVariance in inference', op: 'forwardInference', args: () => [f32(4), [2, 2], { ...running(), runningVariance: f32(2) }], type: R, code: 'ERR_BATCHNORM_INVALID_OPTION', mentions: "unknown option 'runningVariance'" },
  { name: 'unknown options y and dX in backward', op: 'backward', args: () => [f32(4), f32(4), [2, 2], { ...stats(), y: f32(4), dX: f32(4) }], type: R, code: 'ERR_BATCHNORM_INVALID_OPTION', mentions: "unknown options 'y', 'dX'" },
  { name: 'unknown option count in batchMoments', op: 'batchMoments', args: () => [f32(4), [2, 2], { count: 2 }], type: R, code: 'ERR_BATCHNORM_INVALID_OPTION', mentions: "unknown option 'count'" },
  { name: 'unknown option sumdy in backwardSums', op: 'backwardSums', args: () => [f32(4), f32(4), [2, 2], { saveMean: f32(2), sumdy: f64(2) }], type: R, code: 'ERR_BATCHNORM_INVALID_OPTION', mentions: "unknown option 'sumdy'" },
  { name: 'opts whose keys cannot be listed', op: 'forwardTrain', args: () => [f32(4), [2, 2], new Proxy({}, { ownKeys: () => { throw new Error('boom'); } })], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'readable keys for opts' },
  // numbers and booleans
  { name: 'eps zero', op: 'forwardTrain', args: () => [f32(4), [2, 2], { eps: 0 }], type: R, code: 'ERR_BATCHNORM_INVALID_EPS', mentions: 'opts.eps' },
  { name: 'eps negative', op: 'forwardInference', args: () => [f32(4), [2, 2], { ...running(), eps: -1 }], type: R, code: 'ERR_BATCHNORM_INVALID_EPS', mentions: 'opts.eps' },
  { name: 'eps infinite', op: 'forwardTrain', args: () => [f32(4), [2, 2], { eps: Infinity }], type: R, code: 'ERR_BATCHNORM_INVALID_EPS', mentions: 'opts.eps' },
  { name: 'eps NaN', op: 'forwardTrain', args: () => [f32(4), [2, 2], { eps: NaN }], type: R, code: 'ERR_BATCHNORM_INVALID_EPS', mentions: 'opts.eps' },
  { name: 'eps a string', op: 'forwardTrain', args: () => [f32(4), [2, 2], { eps: '1e-5' }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.eps' },
  { name: 'momentum above 1', op: 'forwardTrain', args: () => [f32(4), [2, 2], { momentum: 1.5, ...running() }], type: R, code: 'ERR_BATCHNORM_INVALID_MOMENTUM', mentions: 'opts.momentum' },
  { name: 'momentum negative', op: 'forwardTrain', args: () => [f32(4), [2, 2], { momentum: -0.1, ...running() }], type: R, code: 'ERR_BATCHNORM_INVALID_MOMENTUM', mentions: 'opts.momentum' },
  { name: 'momentum NaN', op: 'forwardTrain', args: () => [f32(4), [2, 2], { momentum: NaN }], type: R, code: 'ERR_BATCHNORM_INVALID_MOMENTUM', mentions: 'opts.momentum' },
  { name: 'unbiased a number', op: 'forwardTrain', args: () => [f32(4), [2, 2], { unbiased: 1 }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.unbiased' },
  { name: 'useGlobalStats a string', op: 'backward', args: () => [f32(4), f32(4), [2, 2], { ...stats(), useGlobalStats: 'yes' }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.useGlobalStats' },
  // too few values
  { name: 'one value per channel', op: 'forwardTrain', args: () => [f32(3), [1, 3]], type: R, code: 'ERR_BATCHNORM_TOO_FEW_VALUES', mentions: 'more than 1 value per channel' },
  { name: 'empty batch in training', op: 'forwardTrain', args: () => [f32(0), [0, 3]], type: R, code: 'ERR_BATCHNORM_TOO_FEW_VALUES', mentions: 'more than 1 value per channel' },
  // destinations
  { name: 'out wrong length', op: 'forwardTrain', args: () => [f32(4), [2, 2], { out: f32(5) }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'opts.out' },
  { name: 'dgamma wrong length', op: 'backward', args: () => [f32(4), f32(4), [2, 2], { ...stats(), dgamma: f32(1) }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'opts.dgamma' },
  // overlap
  {
    name: 'out partly overlapping x', op: 'forwardTrain', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.out',
    args: () => { const b = shared(4); return [b.subarray(0, 4), [2, 2], { out: b.subarray(1, 5) }]; },
  },
  {
    name: 'saveMean and saveInvStd the same array', op: 'forwardTrain', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.saveInvStd',
    args: () => { const s = f32(2); return [f32(4), [2, 2], { saveMean: s, saveInvStd: s }]; },
  },
  {
    name: 'runningMean aliasing gamma', op: 'forwardTrain', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.runningMean',
    args: () => { const s = f32(2); return [f32(4), [2, 2], { gamma: s, runningMean: s }]; },
  },
  {
    name: 'dx = x (only dx = dy may alias)', op: 'backward', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.dx',
    args: () => { const x = f32(4); return [f32(4), x, [2, 2], { ...stats(), dx: x }]; },
  },
  {
    name: 'dgamma overlapping dbeta', op: 'backward', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.dbeta',
    args: () => { const b = shared(2); return [f32(4), f32(4), [2, 2], { ...stats(), dgamma: b.subarray(0, 2), dbeta: b.subarray(1, 3) }]; },
  },
  {
    name: 'out overlapping runningVar', op: 'forwardTrain', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.runningVar',
    args: () => { const b = shared(4); return [f32(4), [2, 2], { out: b.subarray(0, 4), runningVar: b.subarray(3, 5) }]; },
  },
  // synchronized statistics (SPEC section 8)
  { name: 'batchMoments x as Float64Array', op: 'batchMoments', args: () => [f64(4), [2, 2]], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'for x' },
  { name: 'batchMoments mean as Float32Array', op: 'batchMoments', args: () => [f32(4), [2, 2], { mean: f32(2) }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'a Float64Array for opts.mean' },
  { name: 'batchMoments m2 wrong length', op: 'batchMoments', args: () => [f32(4), [2, 2], { m2: f64(3) }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'opts.m2' },
  { name: 'batchMoments axis out of range', op: 'batchMoments', args: () => [f32(4), [2, 2], { axis: 2 }], type: R, code: 'ERR_BATCHNORM_INVALID_AXIS', mentions: 'opts.axis' },
  {
    name: 'batchMoments mean and m2 the same array', op: 'batchMoments', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.m2',
    args: () => { const m = f64(2); return [f32(4), [2, 2], { mean: m, m2: m }]; },
  },
  {
    name: 'batchMoments mean sharing bytes with x', op: 'batchMoments', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.mean',
    args: () => { const b = new ArrayBuffer(32); return [new Float32Array(b, 0, 4), [2, 2], { mean: new Float64Array(b, 8, 2) }]; },
  },
  { name: 'backwardSums saveMean missing', op: 'backwardSums', args: () => [f32(4), f32(4), [2, 2], {}], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.saveMean' },
  { name: 'backwardSums opts missing', op: 'backwardSums', args: () => [f32(4), f32(4), [2, 2]], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.saveMean' },
  { name: 'backwardSums dy wrong length', op: 'backwardSums', args: () => [f32(6), f32(4), [2, 2], { saveMean: f32(2) }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'dy' },
  { name: 'backwardSums sumDy wrong length', op: 'backwardSums', args: () => [f32(4), f32(4), [2, 2], { saveMean: f32(2), sumDy: f64(1) }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'opts.sumDy' },
  { name: 'backwardSums sumDyXmu a plain array', op: 'backwardSums', args: () => [f32(4), f32(4), [2, 2], { saveMean: f32(2), sumDyXmu: [0, 0] }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.sumDyXmu' },
  { name: 'moments a number', op: 'forwardTrain', args: () => [f32(4), [2, 2], { moments: 5 }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.moments' },
  { name: 'moments.count a string', op: 'forwardTrain', args: () => [f32(4), [2, 2], { moments: { ...moments(), count: '4' } }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.moments.count' },
  { name: 'moments.count negative', op: 'forwardTrain', args: () => [f32(4), [2, 2], { moments: moments(-4) }], type: R, code: 'ERR_BATCHNORM_INVALID_COUNT', mentions: 'opts.moments.count' },
  { name: 'moments.count fractional', op: 'forwardTrain', args: () => [f32(4), [2, 2], { moments: moments(2.5) }], type: R, code: 'ERR_BATCHNORM_INVALID_COUNT', mentions: 'opts.moments.count' },
  { name: 'moments.count unsafe', op: 'forwardTrain', args: () => [f32(4), [2, 2], { moments: moments(2 ** 53) }], type: R, code: 'ERR_BATCHNORM_INVALID_COUNT', mentions: 'opts.moments.count' },
  { name: 'moments.count below this batch', op: 'forwardTrain', args: () => [f32(6), [3, 2], { moments: moments(2) }], type: R, code: 'ERR_BATCHNORM_INVALID_COUNT', mentions: "at least this batch's 3" },
  { name: 'moments.count of 1 value per channel', op: 'forwardTrain', args: () => [f32(0), [0, 2], { moments: moments(1) }], type: R, code: 'ERR_BATCHNORM_TOO_FEW_VALUES', mentions: 'opts.moments.count' },
  { name: 'moments.mean as Float32Array', op: 'forwardTrain', args: () => [f32(4), [2, 2], { moments: { ...moments(), mean: f32(2) } }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.moments.mean' },
  { name: 'moments.m2 wrong length', op: 'forwardTrain', args: () => [f32(4), [2, 2], { moments: { ...moments(), m2: f64(3) } }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'opts.moments.m2' },
  { name: 'moments getter that throws', op: 'forwardTrain', args: () => [f32(4), [2, 2], { moments: { get count() { throw new Error('boom'); } } }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.moments.count' },
  {
    name: 'moments.mean sharing bytes with saveMean', op: 'forwardTrain', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.moments.mean',
    args: () => { const b = new ArrayBuffer(16); return [f32(4), [2, 2], { saveMean: new Float32Array(b, 0, 2), moments: { ...moments(), mean: new Float64Array(b) } }]; },
  },
  { name: 'sums without count', op: 'backward', args: () => [f32(4), f32(4), [2, 2], { ...stats(), sums: { sumDy: f64(2), sumDyXmu: f64(2) } }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.sums.count' },
  { name: 'sums.count fractional', op: 'backward', args: () => [f32(4), f32(4), [2, 2], { ...stats(), sums: sums(2.5) }], type: R, code: 'ERR_BATCHNORM_INVALID_COUNT', mentions: 'opts.sums.count' },
  { name: 'sums.count below this batch', op: 'backward', args: () => [f32(6), f32(6), [3, 2], { ...stats(), sums: sums(2) }], type: R, code: 'ERR_BATCHNORM_INVALID_COUNT', mentions: 'opts.sums.count' },
  { name: 'sums.sumDy wrong length', op: 'backward', args: () => [f32(4), f32(4), [2, 2], { ...stats(), sums: { ...sums(), sumDy: f64(3) } }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'opts.sums.sumDy' },
  { name: 'localSums without sums', op: 'backward', args: () => [f32(4), f32(4), [2, 2], { ...stats(), localSums: sums() }], type: R, code: 'ERR_BATCHNORM_INVALID_OPTION', mentions: 'opts.localSums' },
  { name: 'localSums.sumDyXmu as Float32Array', op: 'backward', args: () => [f32(4), f32(4), [2, 2], { ...stats(), sums: sums(), localSums: { sumDy: f64(2), sumDyXmu: f32(2) } }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.localSums.sumDyXmu' },
  { name: 'sums with useGlobalStats', op: 'backward', args: () => [f32(4), f32(4), [2, 2], { ...stats(), useGlobalStats: true, sums: sums() }], type: R, code: 'ERR_BATCHNORM_INVALID_OPTION', mentions: 'opts.sums' },
  {
    name: 'dgamma sharing bytes with sums.sumDy', op: 'backward', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.sums.sumDy',
    args: () => { const b = new ArrayBuffer(16); return [f32(4), f32(4), [2, 2], { ...stats(), dgamma: new Float32Array(b, 0, 2), sums: { ...sums(), sumDy: new Float64Array(b) } }]; },
  },
];

describeErrorCases(CASES);

test("an option of a sibling call is taken, so one options object can serve both calls", () => {
  const params = { gamma: f32(2, 2), beta: f32(2, 1), eps: 1e-3, momentum: 0.2, ...running() };
  const x = Float32Array.of(1, 2, 3, 5);
  const { saveMean, saveInvStd } = bn.forwardTrain(x, [2, 2], params); // momentum: forwardTrain's
  expect(bn.forwardInference(x, [2, 2], params)).toHaveLength(4);
  const stats = { saveMean, saveInvStd }; // saveInvStd: backward's
  expect(bn.backwardSums(x, x, [2, 2], stats).sumDy).toHaveLength(2);
});

describe('setNumThreads', () => {
  test.each([
    { n: 0, type: RangeError, code: 'ERR_BATCHNORM_INVALID_THREADS' },
    { n: 1.5, type: RangeError, code: 'ERR_BATCHNORM_INVALID_THREADS' },
    { n: '2', type: TypeError, code: 'ERR_BATCHNORM_INVALID_TYPE' },
  ])('rejects $n', ({ n, type, code }) => {
    let thrown: unknown;
    try {
      bn.setNumThreads(n as number);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(type);
    expect((thrown as { code: string }).code).toBe(code);
  });
});

describe('an array detached by a getter that runs after its check (SPEC section 4: a TypeError, nothing written)', () => {
  const transfer = (a: ArrayBufferView) => structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });
  test('x, by the shape', () => {
    const x = f32(4);
    const runningMean = f32(2, 5);
    const shape = [2, 2];
    Object.defineProperty(shape, 1, { get: () => (transfer(x), 2) });
    expect(() => bn.forwardTrain(x, shape, { runningMean, runningVar: f32(2) })).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_DETACHED', message: expect.stringContaining('for x') }));
    expect(Array.from(runningMean)).toEqual([5, 5]);
  });
  test('out, by the moments', () => {
    const out = f32(4);
    const runningMean = f32(2, 5);
    const moments = { get count() { transfer(out); return 4; }, mean: f64(2), m2: f64(2, 1) };
    expect(() => bn.forwardTrain(f32(4), [2, 2], { out, moments, runningMean, runningVar: f32(2) })).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_DETACHED', message: expect.stringContaining('opts.out') }));
    expect(Array.from(runningMean)).toEqual([5, 5]);
  });
  test('x, by the sums', () => {
    const x = f32(4);
    const sums = { get count() { transfer(x); return 4; }, sumDy: f64(2), sumDyXmu: f64(2) };
    expect(() => bn.backward(f32(4), x, [2, 2], { saveMean: f32(2), saveInvStd: f32(2), sums })).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_DETACHED', message: expect.stringContaining('for x') }));
  });
  test("an earlier part's mean, by a later part of mergeMoments", () => {
    const first = { count: 3, mean: f64(2, 1), m2: f64(2, 2) };
    const second = { get count() { transfer(first.mean); return 3; }, mean: f64(2, 1), m2: f64(2, 2) };
    expect(() => bn.mergeMoments([first, second])).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_DETACHED', message: expect.stringContaining('parts[0].mean') }));
  });
});

test('an identical view of x as out is an allowed in-place call', () => {
  const x = new Float32Array([1, 2, 3, 4]);
  const alias = new Float32Array(x.buffer, 0, 4);
  expect(bn.forwardTrain(x, [2, 2], { out: alias }).y).toBe(alias);
});

describe('mergeMoments', () => {
  const part = (C = 2, count = 3) => ({ count, mean: f64(C, 1), m2: f64(C, 2) });
  test.each([
    { name: 'parts not an array', parts: part(), type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'parts' },
    { name: 'no parts', parts: [], type: R, code: 'ERR_BATCHNORM_INVALID_PARTS', mentions: 'length 0' },
    { name: 'a sparse array of length 2^31', parts: Object.assign(new Array(2 ** 31), [part()]), type: R, code: 'ERR_BATCHNORM_INVALID_PARTS', mentions: 'parts' },
    { name: 'a Proxy of length 2^32 - 1', parts: new Proxy([], { get: (t, k) => (k === 'length' ? 2 ** 32 - 1 : part()) }), type: R, code: 'ERR_BATCHNORM_INVALID_PARTS', mentions: 'parts' },
    { name: 'a hole', parts: [part(), , part()], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'parts[1]' },
    { name: 'parts of different C', parts: [part(2), part(3)], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'parts[1].mean' },
    { name: 'm2 and mean of different C', parts: [{ ...part(2), m2: f64(3) }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'parts[0].m2' },
    { name: 'a negative count', parts: [part(2, -1)], type: R, code: 'ERR_BATCHNORM_INVALID_COUNT', mentions: 'parts[0].count' },
    { name: 'counts adding up past 2^53', parts: [part(2, 2 ** 52), part(2, 2 ** 52)], type: R, code: 'ERR_BATCHNORM_INVALID_COUNT', mentions: 'parts[1].count' },
    { name: 'mean a plain array', parts: [{ count: 1, mean: [1, 2], m2: f64(2) }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'parts[0].mean' },
  ])('$name', ({ parts, type, code, mentions }) => {
    let thrown: unknown;
    try {
      bn.mergeMoments(parts as never);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(type);
    expect((thrown as { code?: string }).code).toBe(code);
    expect((thrown as Error).message).toContain(mentions);
  });
});
