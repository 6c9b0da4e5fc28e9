/** Seeded random data for reproducible tests, on the package's own seeded generator. */
import { seededRandom } from '../../lib/layer/random';

export function rng(seed: number) {
  const { uniform, normal } = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(uniform() * (hi - lo + 1));
  const pick = <T>(items: readonly T[]) => items[int(0, items.length - 1)];
  /** Float32Array of n values mean + std * N(0, 1). */
  const normals = (n: number, mean = 0, std = 1) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = mean + std * normal();
    return a;
  };
  return { uniform, normal, int, pick, normals };
}

export type Rng = ReturnType<typeof rng>;
