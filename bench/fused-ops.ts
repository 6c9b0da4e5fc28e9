/**
 * What `npm run bench:fused` times: each fused op of SPEC section 7 in three forms, on the same
 * inputs and destinations preallocated (allocation is not what is timed):
 *
 * - plain: this package's BatchNorm call without the fusion (the target's yardstick);
 * - fused: the same call with `activation: 'relu'`, `residual`, `reluMask`, `dresidual`;
 * - unfused: what a user of this package would write without the fusion: the plain BatchNorm
 *   call and a separate elementwise pass in a plain TypeScript loop (the ReLU, the add + ReLU,
 *   or the ReLU's gradient from the saved output, as PyTorch's ReLU backward reads its output).
 */
import { backward, forwardTrain } from '../lib/index';
import type { Case } from './workload';

export type FusedOpName = 'train-relu' | 'train-add-relu' | 'backward-relu' | 'backward-relu-dresidual';
export const FUSED_OPS: FusedOpName[] = ['train-relu', 'train-add-relu', 'backward-relu', 'backward-relu-dresidual'];

/** Minimal traffic of the fused op, bytes per element: the float streams plus the 1-bit mask. */
export const FUSED_BYTES_PER_ELEMENT: Record<FusedOpName, number> = {
  'train-relu': 12 + 1 / 8, // x read twice, y written
  'train-add-relu': 16 + 1 / 8, // and the residual read
  'backward-relu': 20 + 1 / 8, // dy and x read twice, dx written
  'backward-relu-dresidual': 24 + 1 / 8, // and dresidual written
};

export interface Variant {
  run(): void;
  /** The main output (y, or dx), compared across the forms. */
  output(): Float32Array;
}

export interface Forms {
  plain: Variant;
  fused: Variant;
  unfused: Variant;
  /**
   * After each form has run: how the fused form's other outputs (the ReLU mask, dresidual)
   * differ from what the unfused sequence implies, or null when they agree bit for bit.
   */
  otherOutputsMismatch(): string | null;
}

/** The first element where the mask's bit is not `y[i] > 0`, described; null if none. */
function maskMismatch(mask: Uint8Array, y: Float32Array): string | null {
  for (let i = 0; i < y.length; i++) {
    if (((mask[i >> 3] >> (i & 7)) & 1) !== (y[i] > 0 ? 1 : 0)) return `reluMask bit ${i} is not y[${i}] > 0 (y = ${y[i]})`;
  }
  return null;
}

/** The first element where `got` and `want` differ in bits, described; null if none. */
function bitsMismatch(name: string, got: Float32Array, want: Float32Array): string | null {
  const [a, b] = [new Uint32Array(got.buffer, got.byteOffset, got.length), new Uint32Array(want.buffer, want.byteOffset, want.length)];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `${name}[${i}] is ${got[i]}, the unfused sequence's ${want[i]}`;
  return null;
}

/** Read-only inputs of one case. */
export interface FusedInputs {
  x: Float32Array;
  residual: Float32Array;
  dy: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
}

function reluInPlace(y: Float32Array) {
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    y[i] = v > 0 ? v : 0;
  }
}

function addReluInPlace(y: Float32Array, z: Float32Array) {
  for (let i = 0; i < y.length; i++) {
    const v = y[i] + z[i];
    y[i] = v > 0 ? v : 0;
  }
}

/** The ReLU's gradient from its saved output: g = y > 0 ? dy : 0. */
function reluGradient(dy: Float32Array, y: Float32Array, g: Float32Array) {
  for (let i = 0; i < g.length; i++) g[i] = y[i] > 0 ? dy[i] : 0;
}

/** The three forms of `op` on case `c`, with their destinations allocated. */
export function prepareForms(op: FusedOpName, c: Case, inputs: FusedInputs): Forms {
  const { x, residual, dy, gamma, beta } = inputs;
  const n = x.length;
  const C = gamma.length;
  const common = { axis: c.axis, gamma, beta };
  const stats = () => ({ saveMean: new Float32Array(C), saveInvStd: new Float32Array(C) });
  // run() returns nothing: bench/timing.ts takes a returned value as the call's own timing.
  const variant = (output: Float32Array, run: () => unknown): Variant => ({ run: () => void run(), output: () => output });

  if (op === 'train-relu' || op === 'train-add-relu') {
    const add = op === 'train-add-relu';
    const [plainY, fusedY, unfusedY] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
    const plainOpts = { ...common, out: plainY, ...stats() };
    const fusedOpts = { ...common, out: fusedY, ...stats(), activation: 'relu' as const, residual: add ? residual : undefined, reluMask: new Uint8Array(Math.ceil(n / 8)) };
    const unfusedOpts = { ...common, out: unfusedY, ...stats() };
    return {
      plain: variant(plainY, () => forwardTrain(x, c.shape, plainOpts)),
      fused: variant(fusedY, () => forwardTrain(x, c.shape, fusedOpts)),
      unfused: variant(unfusedY, () => {
        forwardTrain(x, c.shape, unfusedOpts);
        if (add) addReluInPlace(unfusedY, residual);
        else reluInPlace(unfusedY);
      }),
      otherOutputsMismatch: () => maskMismatch(fusedOpts.reluMask, unfusedY),
    };
  }

  // Backward through relu(bn(x) + residual): the forward's statistics, mask and output first.
  const withResidual = op === 'backward-relu-dresidual';
  const forward = forwardTrain(x, c.shape, { ...common, activation: 'relu', residual });
  const saved = { axis: c.axis, gamma, saveMean: forward.saveMean, saveInvStd: forward.saveInvStd };
  const grads = () => ({ dx: new Float32Array(n), dgamma: new Float32Array(C), dbeta: new Float32Array(C) });
  const plainOpts = { ...saved, ...grads() };
  const fusedOpts = { ...saved, ...grads(), activation: 'relu' as const, reluMask: forward.reluMask, dresidual: withResidual ? new Float32Array(n) : undefined };
  const unfusedOpts = { ...saved, ...grads() };
  const g = new Float32Array(n); // the unfused ReLU gradient: also the residual's gradient
  return {
    plain: variant(plainOpts.dx, () => backward(dy, x, c.shape, plainOpts)),
    fused: variant(fusedOpts.dx, () => backward(dy, x, c.shape, fusedOpts)),
    unfused: variant(unfusedOpts.dx, () => {
      reluGradient(dy, forward.y, g);
      backward(g, x, c.shape, unfusedOpts);
    }),
    otherOutputsMismatch: () => (fusedOpts.dresidual ? bitsMismatch('dresidual', fusedOpts.dresidual, g) : null),
  };
}
