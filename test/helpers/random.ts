/** Seeded random data for reproducible tests (mulberry32 + Box-Muller). */

export function rng(seed: number) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
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
