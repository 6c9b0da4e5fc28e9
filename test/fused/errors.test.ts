/**
 * Every bad input of SPEC section 7's arguments (activation, residual, reluMask, dresidual), in
 * the forward functions, backward and backwardSums, sync and async: the class, code and message
 * of SPEC section 4, and nothing written (the masks included). Runs on the native and the JS
 * backend (same validation for both).
 */
import { describeErrorCases, type ErrorCase } from '../helpers/error-cases';

const f32 = (n: number, v = 1) => new Float32Array(n).fill(v);
/** Mask bytes for the 2x4 tensors of these cases: ceil(8 / 8). */
const mask = () => new Uint8Array(1).fill(0b1010_1010);
const detached = () => {
  const a = new Float32Array(8);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
};
const resizableMask = () => new Uint8Array(new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(1, { maxByteLength: 8 }));
const shape = [2, 4];
const stats = () => ({ saveMean: f32(4, 0), saveInvStd: f32(4) });
const running = () => ({ runningMean: f32(4, 0), runningVar: f32(4) });
const relu = { activation: 'relu' };
/** A buffer of `bytes` bytes for overlapping views of different types. */
const buffer = (bytes: number) => new ArrayBuffer(bytes);

const T = TypeError;
const R = RangeError;
const CASES: ErrorCase[] = [
  // activation
  { name: 'activation a number', op: 'forwardTrain', args: () => [f32(8), shape, { activation: 1 }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.activation' },
  { name: "activation 'sigmoid'", op: 'forwardTrain', args: () => [f32(8), shape, { activation: 'sigmoid' }], type: R, code: 'ERR_BATCHNORM_INVALID_OPTION', mentions: "'identity' or 'relu'" },
  { name: "activation 'ReLU'", op: 'forwardInference', args: () => [f32(8), shape, { ...running(), activation: 'ReLU' }], type: R, code: 'ERR_BATCHNORM_INVALID_OPTION', mentions: 'opts.activation' },
  { name: 'activation null', op: 'backward', args: () => [f32(8), f32(8), shape, { ...stats(), activation: null }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.activation' },
  // residual
  { name: 'residual a Float64Array', op: 'forwardTrain', args: () => [f32(8), shape, { residual: new Float64Array(8) }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.residual' },
  { name: 'residual of the wrong length', op: 'forwardInference', args: () => [f32(8), shape, { ...running(), residual: f32(4) }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'opts.residual' },
  { name: 'residual detached', op: 'forwardTrain', args: () => [f32(8), shape, { residual: detached() }], type: T, code: 'ERR_BATCHNORM_DETACHED', mentions: 'opts.residual' },
  { name: 'residual = x', op: 'forwardTrain', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.residual', args: () => { const x = f32(8); return [x, shape, { residual: x }]; } },
  {
    name: 'residual = x = out (out may be either, not both)', op: 'forwardInference', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.residual',
    args: () => { const x = f32(8); return [x, shape, { ...running(), residual: x, out: x }]; },
  },
  {
    name: 'residual partly overlapping out', op: 'forwardTrain', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.out',
    args: () => { const b = f32(9); return [f32(8), shape, { residual: b.subarray(0, 8), out: b.subarray(1, 9) }]; },
  },
  {
    name: 'residual partly overlapping x', op: 'forwardTrain', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.residual',
    args: () => { const b = f32(9); return [b.subarray(0, 8), shape, { residual: b.subarray(1, 9) }]; },
  },
  // reluMask in forwardTrain
  { name: 'reluMask without relu', op: 'forwardTrain', args: () => [f32(8), shape, { reluMask: mask() }], type: R, code: 'ERR_BATCHNORM_INVALID_OPTION', mentions: 'opts.reluMask' },
  { name: 'reluMask a Float32Array', op: 'forwardTrain', args: () => [f32(8), shape, { ...relu, reluMask: f32(1) }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'a Uint8Array for opts.reluMask' },
  { name: 'reluMask a Uint8ClampedArray', op: 'forwardTrain', args: () => [f32(8), shape, { ...relu, reluMask: new Uint8ClampedArray(1) }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.reluMask' },
  { name: 'reluMask of the wrong length', op: 'forwardTrain', args: () => [f32(8), shape, { ...relu, reluMask: new Uint8Array(8) }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'a Uint8Array of length 1' },
  { name: 'reluMask on a resizable buffer', op: 'forwardTrain', args: () => [f32(8), shape, { ...relu, reluMask: resizableMask() }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'resizable' },
  {
    name: 'reluMask inside out', op: 'forwardTrain', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.reluMask',
    args: () => { const b = buffer(32); return [f32(8), shape, { ...relu, out: new Float32Array(b), reluMask: new Uint8Array(b, 5, 1) }]; },
  },
  {
    name: 'reluMask inside x', op: 'forwardTrain', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.reluMask',
    args: () => { const b = buffer(32); return [new Float32Array(b).fill(1), shape, { ...relu, reluMask: new Uint8Array(b, 31, 1) }]; },
  },
  // reluMask in backward
  { name: 'relu without reluMask', op: 'backward', args: () => [f32(8), f32(8), shape, { ...stats(), ...relu }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.reluMask' },
  { name: 'reluMask without relu', op: 'backward', args: () => [f32(8), f32(8), shape, { ...stats(), reluMask: mask() }], type: R, code: 'ERR_BATCHNORM_INVALID_OPTION', mentions: "without activation 'relu'" },
  { name: 'reluMask a plain array', op: 'backward', args: () => [f32(8), f32(8), shape, { ...stats(), ...relu, reluMask: [255] }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'Array(1)' },
  { name: 'reluMask too short', op: 'backward', args: () => [f32(8), f32(8), shape, { ...stats(), ...relu, reluMask: new Uint8Array(0) }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'length 0' },
  {
    name: 'reluMask inside dy (read-only both, still an overlap)', op: 'backward', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.reluMask',
    args: () => { const b = buffer(32); return [new Float32Array(b).fill(1), f32(8), shape, { ...stats(), ...relu, reluMask: new Uint8Array(b, 0, 1) }]; },
  },
  {
    name: 'reluMask inside dx', op: 'backward', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.reluMask',
    args: () => { const b = buffer(32); return [f32(8), f32(8), shape, { ...stats(), ...relu, dx: new Float32Array(b), reluMask: new Uint8Array(b, 9, 1) }]; },
  },
  // dresidual
  { name: 'dresidual a number', op: 'backward', args: () => [f32(8), f32(8), shape, { ...stats(), dresidual: 1 }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'a Float32Array or a boolean' },
  { name: 'dresidual a Float64Array', op: 'backward', args: () => [f32(8), f32(8), shape, { ...stats(), dresidual: new Float64Array(8) }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.dresidual' },
  { name: 'dresidual of the wrong length', op: 'backward', args: () => [f32(8), f32(8), shape, { ...stats(), dresidual: f32(7) }], type: R, code: 'ERR_BATCHNORM_LENGTH_MISMATCH', mentions: 'opts.dresidual' },
  {
    name: 'dresidual = x', op: 'backward', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.dresidual',
    args: () => { const x = f32(8); return [f32(8), x, shape, { ...stats(), dresidual: x }]; },
  },
  {
    name: 'dresidual = dx', op: 'backward', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.dresidual',
    args: () => { const d = f32(8); return [f32(8), f32(8), shape, { ...stats(), dx: d, dresidual: d }]; },
  },
  {
    name: 'dx = dy and dresidual = dy at once', op: 'backward', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.dresidual',
    args: () => { const dy = f32(8); return [dy, f32(8), shape, { ...stats(), dx: dy, dresidual: dy }]; },
  },
  {
    name: 'dresidual partly overlapping dy', op: 'backward', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.dresidual',
    args: () => { const b = f32(9); return [b.subarray(0, 8), f32(8), shape, { ...stats(), dresidual: b.subarray(1, 9) }]; },
  },
  // backwardSums (SPEC section 8: the sums of the ReLU's gradient)
  { name: 'relu without reluMask', op: 'backwardSums', args: () => [f32(8), f32(8), shape, { saveMean: f32(4, 0), ...relu }], type: T, code: 'ERR_BATCHNORM_INVALID_TYPE', mentions: 'opts.reluMask' },
  { name: 'reluMask without relu', op: 'backwardSums', args: () => [f32(8), f32(8), shape, { saveMean: f32(4, 0), reluMask: mask() }], type: R, code: 'ERR_BATCHNORM_INVALID_OPTION', mentions: 'opts.reluMask' },
  {
    name: 'reluMask inside sumDy', op: 'backwardSums', type: R, code: 'ERR_BATCHNORM_OVERLAP', mentions: 'opts.reluMask',
    args: () => { const b = buffer(32); return [f32(8), f32(8), shape, { saveMean: f32(4, 0), ...relu, sumDy: new Float64Array(b), reluMask: new Uint8Array(b, 3, 1) }]; },
  },
];

describeErrorCases(CASES);
