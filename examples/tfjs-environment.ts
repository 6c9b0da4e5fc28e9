/**
 * The machine and software a TensorFlow.js measurement ran on, for the reports of
 * `npm run example:tfjs` and `npm run bench:tfjs`. batchnorm's own details are passed in (this
 * file is compiled into both, which load the package from different places).
 */
import { cpus } from 'os';

export interface Environment {
  date: string;
  cpu: string;
  node: string;
  tfjs: string;
  batchnorm: string;
  isa: string;
  threads: number;
  /** libgomp's OMP_WAIT_POLICY: how our idle kernel threads wait (spinning ones take cores from tfjs). */
  ompWaitPolicy: string;
}

export function environment(info: { version: string; isa: string; threads: number }): Environment {
  return {
    date: new Date().toISOString(),
    cpu: `${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} logical cores)`,
    node: process.version,
    tfjs: (require('@tensorflow/tfjs/package.json') as { version: string }).version,
    batchnorm: info.version,
    isa: info.isa,
    threads: info.threads,
    ompWaitPolicy:
      process.env.OMP_WAIT_POLICY ??
      (process.env.GOMP_SPINCOUNT === undefined ? 'unset (the addon loads with a short spin)' : `unset, GOMP_SPINCOUNT=${process.env.GOMP_SPINCOUNT}`),
  };
}

/** One line for a report's header. */
export function environmentLine(e: Environment): string {
  return `${e.cpu}; Node ${e.node}; @tensorflow/tfjs ${e.tfjs} (its backends run one thread); batchnorm ${e.batchnorm} (${e.isa}, ${e.threads} thread(s), OMP_WAIT_POLICY ${e.ompWaitPolicy}).`;
}
