/**
 * This package's own backends: the native kernels at each ISA the CPU has (selected in
 * process, as BATCHNORM_ISA would), and the JavaScript backend. Destinations are
 * preallocated, so allocation is not what is timed.
 */
import { jsBackend } from '../../lib/js-backend';
import { load } from '../../lib/loader';
import type { Backend, BackwardPlan, InferencePlan, TrainPlan } from '../../lib/plan';
import { planBackward, planForwardInference, planForwardTrain } from '../../lib/validate';
import type { NativeBinding } from '../../lib/native-backend';
import type { BenchBackend, Cell, Prepared } from './types';

type Plan = TrainPlan | InferencePlan | BackwardPlan;

function plan(cell: Cell): { plan: Plan; output: () => Float32Array } {
  const { c, inputs: i } = cell;
  const common = { axis: c.axis, gamma: i.gamma, beta: i.beta };
  const n = c.elements;
  if (cell.op === 'forwardTrain') {
    const p = planForwardTrain(i.x, c.shape, { ...common, eps: i.eps, out: new Float32Array(n) });
    return { plan: p, output: () => p.y };
  }
  if (cell.op === 'forwardInference') {
    const p = planForwardInference(i.x, c.shape, { ...common, eps: i.eps, runningMean: i.runningMean, runningVar: i.runningVar, out: new Float32Array(n) });
    return { plan: p, output: () => p.y };
  }
  const p = planBackward(i.dy, i.x, c.shape, { ...common, saveMean: i.saveMean, saveInvStd: i.saveInvStd, dx: new Float32Array(n) });
  return { plan: p, output: () => p.dx };
}

function runner(backend: Backend, op: Cell['op']): (p: Plan) => void {
  if (op === 'forwardTrain') return (p) => backend.forwardTrain(p as TrainPlan);
  if (op === 'forwardInference') return (p) => backend.forwardInference(p as InferencePlan);
  return (p) => backend.backward(p as BackwardPlan);
}

/** The native binding, or why it is unavailable. */
export function loadNative(): { binding: NativeBinding; backend: Backend } | { reason: string } {
  const loaded = load({ ...process.env, BATCHNORM_BACKEND: undefined });
  return loaded.native ? { binding: loaded.native, backend: loaded.backend } : { reason: loaded.fallbackReason ?? 'unknown' };
}

/** native-<isa>: reconfigures the addon (ISA cap and threads) only when another backend changed it. */
export function nativeBackends(binding: NativeBinding, backend: Backend): BenchBackend[] {
  let current = '';
  return binding.info().supportedIsas.split(',').map((isa) => ({
    name: `native-${isa}`,
    unsupported: () => undefined,
    threadsUsed: (t) => t,
    async prepare(cell: Cell): Promise<Prepared> {
      const { plan: p, output } = plan(cell);
      const run = runner(backend, cell.op);
      const config = `${isa}/${cell.threads}`;
      return {
        run: () => {
          if (current !== config) {
            binding.configure(isa, cell.threads);
            current = config;
          }
          run(p);
        },
        output,
        dispose: () => undefined,
      };
    },
  }));
}

export const jsBench: BenchBackend = {
  name: 'js',
  unsupported: () => undefined,
  threadsUsed: () => 1,
  async prepare(cell: Cell): Promise<Prepared> {
    const { plan: p, output } = plan(cell);
    const run = runner(jsBackend, cell.op);
    return { run: () => run(p), output, dispose: () => undefined };
  },
};
