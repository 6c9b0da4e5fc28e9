/** What the benchmark measures: operations, shapes and layouts, and the traffic model. */

/** A kernel call of the API, or a training step: forwardTrain, then backward on its statistics. */
export type Op = 'forwardTrain' | 'forwardInference' | 'backward' | 'trainStep';
export const KERNEL_OPS: Op[] = ['forwardTrain', 'forwardInference', 'backward'];
export const OPS: Op[] = [...KERNEL_OPS, 'trainStep'];

/**
 * Minimal DRAM traffic per element: forwardTrain reads x twice (statistics, then normalise)
 * and writes y; inference reads x and writes y; backward reads dy and x twice and writes dx;
 * a training step does forwardTrain and backward.
 */
export const BYTES_PER_ELEMENT: Record<Op, number> = { forwardTrain: 12, forwardInference: 8, backward: 20, trainStep: 32 };

export type Layout = 'nc' | 'nchw' | 'nhwc';

export interface Case {
  /** e.g. `32x64x56x56-nhwc` (dimensions always written N x C x ...). */
  name: string;
  /** N, C, spatial... whatever the layout. */
  dims: number[];
  layout: Layout;
  shape: number[]; // in memory order
  axis: number;
  elements: number;
}

/** A case from N x C x spatial... dimensions in the given layout. */
function makeCase(dims: number[], layout: Layout): Case {
  const [n, c, ...spatial] = dims;
  const shape = layout === 'nhwc' ? [n, ...spatial, c] : dims;
  return {
    name: `${dims.join('x')}-${layout}`,
    dims,
    layout,
    shape,
    axis: layout === 'nhwc' ? -1 : 1,
    elements: dims.reduce((p, d) => p * d, 1),
  };
}

const IMAGE_SHAPES = [
  [32, 64, 56, 56],
  [64, 256, 14, 14],
  [128, 512, 7, 7],
  [16, 32, 112, 112],
  [8, 64, 224, 224],
];

/** Every case of the full run. */
export const ALL_CASES: Case[] = [
  makeCase([256, 1024], 'nc'),
  makeCase([4096, 1024], 'nc'),
  ...IMAGE_SHAPES.flatMap((d) => [makeCase(d, 'nchw'), makeCase(d, 'nhwc')]),
];

/** The default run: one in-cache and one out-of-cache image shape in both layouts, plus [N, C]. */
export const DEFAULT_CASES = ['256x1024-nc', '32x64x56x56-nchw', '32x64x56x56-nhwc', '8x64x224x224-nchw', '8x64x224x224-nhwc'];

/** The cells of the kernel issue's table (issue 12) that the default run does not have (`--issue12`). */
export const ISSUE12_EXTRA_CASES = ['4096x1024-nc', '64x256x14x14-nchw', '64x256x14x14-nhwc', '128x512x7x7-nhwc'];

export function findCases(names: string[]): Case[] {
  return names.map((name) => {
    const found = ALL_CASES.find((c) => c.name === name);
    if (!found) throw new Error(`unknown shape "${name}"; known: ${ALL_CASES.map((c) => c.name).join(', ')}`);
    return found;
  });
}

/** Deterministic pseudo-random data, fast enough for 100 MB tensors. */
export function noise(n: number, seed: number, offset: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = offset + scale * (s / 4294967296 - 0.5);
  }
  return a;
}
