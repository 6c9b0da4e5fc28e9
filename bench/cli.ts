/** Command-line flags of `npm run bench`. */
import { availableParallelism } from 'os';

import { ALL_CASES, DEFAULT_CASES, OPS, type Op } from './workload';

export const USAGE = `npm run bench -- [flags]
  --full                 every shape, layout and backend (tfjs-cpu included)
  --ops=a,b              forwardTrain, forwardInference, backward (default: all)
  --shapes=a,b           e.g. 32x64x56x56-nhwc,256x1024-nc (default: ${DEFAULT_CASES.join(',')})
  --threads=1,N          thread counts (default: 1 and all cores)
  --backends=a,b         native (every ISA), native-<isa>, js, onnxruntime, tfjs-wasm, tfjs-cpu
                         (default: all but tfjs-cpu, which takes seconds per call)
  --json                 print the JSON report to stdout instead of the table
  --out=DIR              where to write latest.{json,md,svg} (default: bench/results)`;

export interface Options {
  ops: Op[];
  shapes: string[];
  threads: number[];
  backends: string[];
  json: boolean;
  out?: string;
}

const DEFAULT_BACKENDS = ['native', 'js', 'onnxruntime', 'tfjs-wasm'];
const ALL_BACKENDS = [...DEFAULT_BACKENDS, 'tfjs-cpu'];

export function parseArgs(argv: string[]): Options {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new Error(`unexpected argument "${arg}"\n${USAGE}`);
    flags.set(m[1], m[2] ?? '');
  }
  for (const key of flags.keys()) {
    if (!['full', 'ops', 'shapes', 'threads', 'backends', 'json', 'out', 'help'].includes(key)) throw new Error(`unknown flag --${key}\n${USAGE}`);
  }
  if (flags.has('help')) {
    console.log(USAGE);
    process.exit(0);
  }
  const full = flags.has('full');
  const list = (key: string) => flags.get(key)?.split(',').filter(Boolean);
  const ops = (list('ops') ?? OPS) as Op[];
  for (const op of ops) if (!OPS.includes(op)) throw new Error(`unknown op "${op}"`);
  const cores = availableParallelism();
  const threads = list('threads')?.map(Number) ?? [...new Set([1, cores])];
  if (threads.some((t) => !Number.isInteger(t) || t < 1)) throw new Error('--threads takes positive integers');
  return {
    ops,
    shapes: list('shapes') ?? (full ? ALL_CASES.map((c) => c.name) : DEFAULT_CASES),
    threads,
    backends: list('backends') ?? (full ? ALL_BACKENDS : DEFAULT_BACKENDS),
    json: flags.has('json'),
    out: flags.get('out') || undefined,
  };
}
