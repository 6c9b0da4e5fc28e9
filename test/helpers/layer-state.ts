/** The layer tests' check that a throwing call modified nothing. */
import type { BatchNorm } from '../../lib/index';

/** Everything a call could modify, to check that a throwing call modified nothing. */
export function snapshot(bn: BatchNorm): string {
  return JSON.stringify({ state: bn.stateDict(), gg: bn.gradGamma, gb: bn.gradBeta }, (_, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v));
}
