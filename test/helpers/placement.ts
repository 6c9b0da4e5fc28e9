/** Arrays at chosen byte offsets, for tests that results do not depend on alignment. */

/** A copy of `src` starting `offset` floats (0-15) into a fresh buffer. */
export function placed(src: Float32Array, offset: number): Float32Array {
  const a = new Float32Array(new ArrayBuffer(4 * (src.length + 16)), 4 * offset, src.length);
  a.set(src);
  return a;
}
