/**
 * Bad numbers (issue 6, item 6; SPEC section 4): NaN and +-Infinity in any input (data, gamma,
 * beta, running and saved statistics, upstream gradients) never throw; they reach only the
 * channel they sit in, and there every output is what float64 IEEE arithmetic on the same inputs
 * gives (NaN where it is NaN, non-finite where it is infinite, close where it is finite). Denormal
 * inputs are computed as IEEE says (no flush to zero) and at full speed.
 */
import { describe, expect, test } from 'vitest';

import { backward, forwardInference, forwardTrain } from '../lib/index';
import { rng } from './helpers/random';
import { geometryOf, refBackward, refForwardTrain, refInference, type Geometry } from './helpers/reference';

/** The channel every case poisons. */
const P = 1;
const MOMENTUM = 0.1;

interface Inputs {
  x: Float32Array;
  dy: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
  saveMean: Float32Array;
  saveInvStd: Float32Array;
}

function inputs(g: Geometry, seed: number): Inputs {
  const r = rng(seed);
  const n = g.outer * g.channels * g.inner;
  const C = g.channels;
  const x = r.normals(n, 1, 2);
  const stats = refForwardTrain(x, g);
  return {
    x,
    dy: r.normals(n),
    gamma: r.normals(C, 1, 0.2),
    beta: r.normals(C),
    runningMean: r.normals(C),
    runningVar: Float32Array.from(r.normals(C), (v) => v * v + 0.5),
    saveMean: Float32Array.from(stats.mean),
    saveInvStd: Float32Array.from(stats.invStd),
  };
}

type Op = 'forwardTrain' | 'forwardInference' | 'backward';

/** Runs op on copies of the inputs; returns every output, and the float64 reference of each. */
function run(op: Op, shape: number[], axis: number, g: Geometry, inp: Inputs) {
  const i = structuredClone(inp);
  if (op === 'forwardTrain') {
    const out = forwardTrain(i.x, shape, { axis, gamma: i.gamma, beta: i.beta, runningMean: i.runningMean, runningVar: i.runningVar, momentum: MOMENTUM });
    const ref = refForwardTrain(inp.x, g, { gamma: inp.gamma, beta: inp.beta });
    const M = g.outer * g.inner;
    const mix = (old: Float32Array, batch: ArrayLike<number>) => Array.from(old, (v, c) => (1 - MOMENTUM) * v + MOMENTUM * batch[c]!);
    return {
      y: [out.y, ref.y],
      saveMean: [out.saveMean, ref.mean],
      saveInvStd: [out.saveInvStd, ref.invStd],
      runningMean: [i.runningMean, mix(inp.runningMean, ref.mean)],
      runningVar: [i.runningVar, mix(inp.runningVar, Array.from(ref.variance, (v) => (v * M) / (M - 1)))],
    } as Record<string, [Float32Array, ArrayLike<number>]>;
  }
  if (op === 'forwardInference') {
    const o = { axis, gamma: i.gamma, beta: i.beta, runningMean: i.runningMean, runningVar: i.runningVar };
    return { y: [forwardInference(i.x, shape, o), refInference(inp.x, g, { ...inp })] } as Record<string, [Float32Array, ArrayLike<number>]>;
  }
  const b = backward(i.dy, i.x, shape, { axis, gamma: i.gamma, saveMean: i.saveMean, saveInvStd: i.saveInvStd });
  const ref = refBackward(inp.dy, inp.x, g, { gamma: inp.gamma, saveMean: inp.saveMean, saveInvStd: inp.saveInvStd });
  return { dx: [b.dx, ref.dx], dgamma: [b.dgamma, ref.dgamma], dbeta: [b.dbeta, ref.dbeta] } as Record<string, [Float32Array, ArrayLike<number>]>;
}

/**
 * Elements of other channels equal the clean run bit for bit; in channel P, NaN where the
 * reference is NaN (or, with `nanMayBeInf`, any non-finite value), non-finite where it is
 * infinite, and within 1e-4 (relative to the channel's largest finite reference value) where it
 * is finite.
 */
function expectIeee(what: string, got: Float32Array, clean: Float32Array, ref: ArrayLike<number>, channelOf: (k: number) => number, nanMayBeInf: boolean) {
  let scale = 1;
  for (let k = 0; k < ref.length; k++) if (channelOf(k) === P && Number.isFinite(ref[k])) scale = Math.max(scale, Math.abs(ref[k]!));
  for (let k = 0; k < got.length; k++) {
    const a = got[k]!;
    const r = ref[k]!;
    const wrong =
      channelOf(k) !== P ? !Object.is(a, clean[k]) && !(Number.isNaN(a) && Number.isNaN(clean[k]))
      : Number.isNaN(r) && !nanMayBeInf ? !Number.isNaN(a)
      : !Number.isFinite(r) ? Number.isFinite(a)
      : !(Math.abs(a - r) <= 1e-4 * scale);
    if (wrong) expect.fail(`${what}[${k}] (channel ${channelOf(k)}): got ${a}, IEEE reference ${r}, clean run ${clean[k]}`);
  }
}

type Poison = (i: Inputs, g: Geometry) => void;
/** Index of element `which` (0, 1, ...) of channel P in memory order. */
const inP = (g: Geometry, which: number) => (Math.floor(which / g.inner) * g.channels + P) * g.inner + (which % g.inner);

const CASES: Array<{ op: Op; name: string; poison: Poison; nanMayBeInf?: boolean }> = [
  { op: 'forwardTrain', name: 'NaN in x', poison: (i, g) => (i.x[inP(g, 3)] = NaN) },
  { op: 'forwardTrain', name: '+Infinity in x', poison: (i, g) => (i.x[inP(g, 3)] = Infinity) },
  { op: 'forwardTrain', name: '-Infinity in x', poison: (i, g) => (i.x[inP(g, 0)] = -Infinity) },
  { op: 'forwardTrain', name: '+Infinity and -Infinity in x', poison: (i, g) => { i.x[inP(g, 0)] = Infinity; i.x[inP(g, 5)] = -Infinity; } },
  { op: 'forwardTrain', name: 'NaN gamma', poison: (i) => (i.gamma[P] = NaN) },
  { op: 'forwardTrain', name: 'Infinity gamma', poison: (i) => (i.gamma[P] = Infinity) },
  { op: 'forwardTrain', name: '-Infinity beta', poison: (i) => (i.beta[P] = -Infinity) },
  { op: 'forwardTrain', name: 'NaN running mean', poison: (i) => (i.runningMean[P] = NaN) },
  { op: 'forwardTrain', name: 'Infinity running variance', poison: (i) => (i.runningVar[P] = Infinity) },
  { op: 'forwardInference', name: 'NaN in x (that element only)', poison: (i, g) => (i.x[inP(g, 3)] = NaN) },
  { op: 'forwardInference', name: 'Infinity in x (that element only)', poison: (i, g) => (i.x[inP(g, 3)] = Infinity) },
  { op: 'forwardInference', name: 'NaN running mean', poison: (i) => (i.runningMean[P] = NaN) },
  { op: 'forwardInference', name: 'Infinity running mean', poison: (i) => (i.runningMean[P] = Infinity) },
  { op: 'forwardInference', name: 'Infinity running variance (y = beta)', poison: (i) => (i.runningVar[P] = Infinity) },
  { op: 'forwardInference', name: 'negative running variance', poison: (i) => (i.runningVar[P] = -1) },
  { op: 'forwardInference', name: 'NaN running variance', poison: (i) => (i.runningVar[P] = NaN) },
  { op: 'forwardInference', name: 'Infinity gamma', poison: (i) => (i.gamma[P] = Infinity) },
  { op: 'forwardInference', name: 'NaN beta', poison: (i) => (i.beta[P] = NaN) },
  { op: 'backward', name: 'NaN in dy', poison: (i, g) => (i.dy[inP(g, 2)] = NaN) },
  { op: 'backward', name: 'Infinity in dy', poison: (i, g) => (i.dy[inP(g, 2)] = Infinity) },
  { op: 'backward', name: 'NaN in x', poison: (i, g) => (i.x[inP(g, 2)] = NaN) },
  { op: 'backward', name: 'NaN gamma (dgamma, dbeta stay finite)', poison: (i) => (i.gamma[P] = NaN) },
  { op: 'backward', name: 'NaN saved mean', poison: (i) => (i.saveMean[P] = NaN) },
  // The kernels scale sum(dy * (x - mean)) by invStd once (finite times Infinity: +-Infinity);
  // the reference scales every term first (+Infinity and -Infinity terms: NaN). Both are IEEE.
  { op: 'backward', name: 'Infinity saved inverse std', poison: (i) => (i.saveInvStd[P] = Infinity), nanMayBeInf: true },
];

const LAYOUTS = [
  { name: 'NCHW', shape: [3, 4, 7, 9], axis: 1 },
  { name: 'NC (rows)', shape: [150, 4], axis: 1 },
  { name: 'long runs', shape: [2, 4, 2500], axis: 1 },
];

describe.each(LAYOUTS)('NaN and Infinity propagate as IEEE arithmetic says ($name)', ({ shape, axis }) => {
  const g = geometryOf(shape, axis);
  const clean = inputs(g, 21);

  test.each(CASES)('$op: $name', ({ op, poison, nanMayBeInf = false }) => {
    const poisoned = structuredClone(clean);
    poison(poisoned, g);
    const before = run(op, shape, axis, g, clean);
    const after = run(op, shape, axis, g, poisoned);
    for (const [what, [got, ref]] of Object.entries(after)) {
      const perChannel = got.length === g.channels;
      const channelOf = perChannel ? (k: number) => k : (k: number) => Math.floor(k / g.inner) % g.channels;
      expectIeee(what, got, before[what]![0], ref, channelOf, nanMayBeInf);
    }
  });
});

// ---- Denormals ----

const DENORMAL = 1e-39; // float32 normals start at 2^-126 ~ 1.18e-38

describe('denormal inputs', () => {
  test('are not flushed to zero: inference with scale 1 returns them exactly', () => {
    const x = Float32Array.from({ length: 4 * 3 * 70 }, (_, k) => (k % 7) * DENORMAL - 3 * DENORMAL);
    const ones = new Float32Array(3).fill(1);
    const y = forwardInference(x, [4, 3, 70], { runningMean: new Float32Array(3), runningVar: ones.map(() => 1 - 1e-5), eps: 1e-5 });
    expect(Array.from(y)).toEqual(Array.from(x));
    const b = backward(x, x, [4, 3, 70], { saveMean: new Float32Array(3), saveInvStd: ones, useGlobalStats: true });
    expect(Array.from(b.dx)).toEqual(Array.from(x));
  });
});
