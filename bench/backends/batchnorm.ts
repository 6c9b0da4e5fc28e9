/**
 * This package's own backends:
 * - `native-<isa>`: the native kernels at each ISA the CPU has (selected in process, as
 *   BATCHNORM_ISA would), every destination preallocated and the call validated up front, so
 *   neither allocation nor validation is what is timed; `js`: the JavaScript backend, the same way;
 * - at the best ISA, the package as users call it: `native-nodest`, the public functions without
 *   destinations (they allocate their outputs), and `native-layer` / `native-layer-reuse`, a
 *   `BatchNorm` layer's training step without and with `reuseOutputs`.
 */
import { backendInfo, backward, BatchNorm, forwardInference, forwardTrain } from '../../lib/index';
import { jsBackend } from '../../lib/js-backend';
import { load } from '../../lib/loader';
import type { Backend } from '../../lib/plan';
import { planBackward, planForwardInference, planForwardTrain } from '../../lib/validate';
import type { NativeBinding } from '../../lib/native-backend';
import { OURS } from './names';
import type { BenchBackend, Cell, Prepared } from './types';

/** A cell's call, ready to run, and its main output (y, or dx for backward and trainStep). */
interface Call {
  run(): void;
  output(): Float32Array;
}

/** The cell's call on `backend` with every destination preallocated. */
function withDestinations(cell: Cell, backend: Backend): Call {
  const { c, inputs: i } = cell;
  const common = { axis: c.axis, gamma: i.gamma, beta: i.beta };
  const n = c.elements;
  const train = () => planForwardTrain(i.x, c.shape, { ...common, eps: i.eps, out: new Float32Array(n) });
  const back = (saveMean: Float32Array, saveInvStd: Float32Array) =>
    planBackward(i.dy, i.x, c.shape, { ...common, saveMean, saveInvStd, dx: new Float32Array(n) });
  switch (cell.op) {
    case 'forwardTrain': {
      const p = train();
      return { run: () => backend.forwardTrain(p), output: () => p.y };
    }
    case 'forwardInference': {
      const p = planForwardInference(i.x, c.shape, { ...common, eps: i.eps, runningMean: i.runningMean, runningVar: i.runningVar, out: new Float32Array(n) });
      return { run: () => backend.forwardInference(p), output: () => p.y };
    }
    case 'backward': {
      const p = back(i.saveMean, i.saveInvStd);
      return { run: () => backend.backward(p), output: () => p.dx };
    }
    case 'trainStep': {
      const f = train();
      const b = back(f.saveMean, f.saveInvStd);
      return {
        run: () => {
          backend.forwardTrain(f);
          backend.backward(b);
        },
        output: () => b.dx,
      };
    }
  }
}

/** The cell's call through the public functions without destinations: every output is a new array. */
function withoutDestinations(cell: Cell): Call {
  const { c, inputs: i } = cell;
  const common = { axis: c.axis, gamma: i.gamma, beta: i.beta };
  const train = () => forwardTrain(i.x, c.shape, { ...common, eps: i.eps });
  const back = (saveMean: Float32Array, saveInvStd: Float32Array) => backward(i.dy, i.x, c.shape, { ...common, saveMean, saveInvStd }).dx;
  let out: Float32Array = new Float32Array(0);
  const run = {
    forwardTrain: () => (out = train().y),
    forwardInference: () => (out = forwardInference(i.x, c.shape, { ...common, eps: i.eps, runningMean: i.runningMean, runningVar: i.runningVar })),
    backward: () => (out = back(i.saveMean, i.saveInvStd)),
    trainStep: () => {
      const f = train();
      out = back(f.saveMean, f.saveInvStd);
    },
  }[cell.op];
  return { run, output: () => out };
}

/** A `BatchNorm` layer's training step on the cell's data: forward, then backward. */
function layerStep(cell: Cell, reuseOutputs: boolean): Call {
  const { c, inputs: i } = cell;
  const layer = new BatchNorm(i.gamma.length, { axis: c.axis, eps: i.eps, reuseOutputs });
  layer.gamma!.set(i.gamma);
  layer.beta!.set(i.beta);
  let dx: Float32Array = new Float32Array(0);
  return {
    run: () => {
      layer.forward(i.x, c.shape);
      dx = layer.backward(i.dy);
    },
    output: () => dx,
  };
}

/** The native binding, or why it is unavailable. */
export function loadNative(): { binding: NativeBinding; backend: Backend } | { reason: string } {
  const loaded = load({ ...process.env, BATCHNORM_BACKEND: undefined });
  return loaded.native ? { binding: loaded.native, backend: loaded.backend } : { reason: loaded.fallbackReason ?? 'unknown' };
}

/**
 * `native-<isa>` for each ISA, then the user paths at the best one. All of them share the
 * addon, which is reconfigured (ISA cap and threads) only when another backend changed it.
 */
export function nativeBackends(binding: NativeBinding, backend: Backend): BenchBackend[] {
  let current = '';
  const configure = (isa: string, threads: number) => {
    if (current === `${isa}/${threads}`) return;
    binding.configure(isa, threads);
    current = `${isa}/${threads}`;
  };
  const native = (name: string, isa: string, unsupported: (cell: Cell) => string | undefined, call: (cell: Cell) => Call): BenchBackend => ({
    name,
    unsupported,
    threadsUsed: (t) => t,
    async prepare(cell: Cell): Promise<Prepared> {
      const { run, output } = call(cell);
      return {
        run: () => {
          configure(isa, cell.threads);
          run();
        },
        output,
        dispose: () => undefined,
      };
    },
  });
  const isas = binding.info().supportedIsas.split(',');
  // The public functions and the layer run on the backend the package loaded for its users.
  const publicApi = () => (backendInfo().backend === 'native' ? undefined : `the package runs its JS backend here (${backendInfo().fallbackReason ?? 'BATCHNORM_BACKEND=js'})`);
  const stepOnly = (cell: Cell) => publicApi() ?? (cell.op === 'trainStep' ? undefined : 'a training step only (forward + backward)');
  return [
    ...isas.map((isa) => native(`native-${isa}`, isa, () => undefined, (cell) => withDestinations(cell, backend))),
    native(OURS.nodest, isas[0], publicApi, withoutDestinations),
    native(OURS.layer, isas[0], stepOnly, (cell) => layerStep(cell, false)),
    native(OURS.layerReuse, isas[0], stepOnly, (cell) => layerStep(cell, true)),
  ];
}

export const jsBench: BenchBackend = {
  name: 'js',
  unsupported: () => undefined,
  threadsUsed: () => 1,
  async prepare(cell: Cell): Promise<Prepared> {
    const { run, output } = withDestinations(cell, jsBackend);
    return { run, output, dispose: () => undefined };
  },
};
