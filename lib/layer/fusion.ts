/**
 * The layer's fused inputs and outputs (SPEC sections 7 and 9): the residual that `forward`
 * adds before the activation, the destination `backward` writes its gradient to, and the ReLU
 * mask of an eval-mode forward. The layer checks each array whole, with the other arrays of the
 * call, before the first kernel call: a layer call spans one kernel call per ghost batch, and an
 * overlap seen only by a later one would come after earlier ones had written.
 */
import { rangeError } from '../errors';
import { maskBytes } from '../validate';
import { optionalFloat32Array } from './checks';

/** forward's `opts.residual`: null when absent (undefined or null, as in the functions), else a Float32Array of x's length. */
export function residualInput(value: unknown, length: number): Float32Array | null {
  return optionalFloat32Array(value, 'opts.residual', length);
}

/**
 * backward's `opts.dresidual`: null when absent, else a Float32Array of x's length, and only
 * after a forward that added a residual (whose gradient it receives).
 */
export function residualGradient(value: unknown, length: number, forwardHadResidual: boolean): Float32Array | null {
  const d = optionalFloat32Array(value, 'opts.dresidual', length);
  if (d !== null && !forwardHadResidual) {
    throw rangeError('ERR_BATCHNORM_INVALID_OPTION', 'no dresidual after a forward without residual', 'opts.dresidual', 'a destination');
  }
  return d;
}

/** The ReLU mask of an output: bit i set iff y[i] > 0 (what forwardTrain returns with 'relu'). */
export function reluMaskOf(y: Float32Array): Uint8Array {
  const mask = new Uint8Array(maskBytes(y.length));
  for (let i = 0; i < y.length; i++) if (y[i] > 0) mask[i >> 3] |= 1 << (i & 7);
  return mask;
}
