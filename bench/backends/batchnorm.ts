/**
 * This package's own kernels in the benchmark's process: `native-<isa>`, the native kernels at
 * each ISA the CPU has (selected in process, as BATCHNORM_ISA would), every destination
 * preallocated and the call validated up front, so neither allocation nor validation is what is
 * timed; `js`: the JavaScript backend, the same way. The package as users call it (no
 * destinations, the layer) runs in a process of its own: bench/backends/ours.ts.
 */
import { jsBackend } from '../../lib/js-backend';
import { load } from '../../lib/loader';
import type { Backend } from '../../lib/plan';
import { planBackward, planForwardInference, planForwardTrain } from '../../lib/validate';
import type { NativeBinding } from '../../lib/native-backend';
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
  return isas.map((isa) => native(`native-${isa}`, isa, () => undefined, (cell) => withDestinations(cell, backend)));
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
