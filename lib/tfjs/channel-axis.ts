/**
 * Which axis of `x` per-channel parameters of FusedBatchNorm apply to.
 *
 * tfjs passes mean, variance, offset and scale either as rank-1 tensors of the last dimension
 * (channels-last), or reshaped to broadcast along one axis (`[1, C, 1, 1]` for channels-first,
 * as tfjs-layers does for `axis: 1`), or at the full size of `x`. Broadcasting aligns shapes on
 * the right, as in NumPy: a parameter of shape `p` applies along `axis` when, aligned on the
 * right with `x`'s shape, it is `x`'s dimension at `axis` and 1 everywhere else.
 */

/**
 * True when `param`, aligned on the right with `xShape`, reaches `axis` and varies along it only.
 * (One that does not reach it, such as a scalar, broadcasts one value to every channel.)
 */
function alongAxis(param: readonly number[], xShape: readonly number[], axis: number): boolean {
  const offset = xShape.length - param.length;
  if (offset < 0 || offset > axis) return false;
  return param.every((d, k) => (k + offset === axis ? d === xShape[axis] : d === 1));
}

/**
 * The axis along which every parameter holds one value per channel, or `undefined` when there is
 * none (full-size or otherwise broadcast parameters). When several axes fit (dimensions of 1),
 * any of them gives the same result; the last is taken.
 */
export function channelAxis(xShape: readonly number[], paramShapes: readonly (readonly number[])[]): number | undefined {
  for (let axis = xShape.length - 1; axis >= 0; axis--) {
    if (paramShapes.every((p) => alongAxis(p, xShape, axis))) return axis;
  }
  return undefined;
}
