/** Command-line flags of `npm run bench`, parsed by Node's util.parseArgs. */
import { availableParallelism } from 'os';
import { parseArgs } from 'util';

import { exitWithError, UsageError } from '../examples/command-line';
import { ALL_CASES, DEFAULT_CASES, ISSUE12_EXTRA_CASES, OPS, type Op } from './workload';

const DEFAULT_PYTHON = '/usr/bin/python3';

export const USAGE = `usage: npm run bench -- [flags]
  --full                 every shape, layout and backend (tfjs-cpu included)
  --issue12              the default shapes and the other cells of the kernel issue's table:
                         ${ISSUE12_EXTRA_CASES.join(',')}
  --ops a,b              forwardTrain, forwardInference, backward, trainStep (forwardTrain, then
                         backward: the layer step's op) (default: all)
  --shapes a,b           e.g. 32x64x56x56-nhwc,256x1024-nc (default: ${DEFAULT_CASES.join(',')})
  --threads 1,N          thread counts (default: 1 and all cores)
  --backends a,b         names or families (a family selects all of its backends):
                         native: native-<isa> (the kernels at every ISA, every destination given),
                           native-dest (the public functions, every destination given),
                           native-nodest (no destinations), native-layer, native-layer-reuse;
                         js; onnxruntime; tfjs: tfjs-wasm, tfjs-cpu;
                         torch: torch, torch-nommap, torch-layer; onednn
                         (default: all but tfjs-cpu, which takes seconds per call)
  --python PATH          the python3 that has PyTorch (default: ${DEFAULT_PYTHON})
  --node-flags=FLAGS     Node.js flags (space-separated) for the process of native-dest,
                         native-nodest and the layer paths, e.g. --node-flags=--single-threaded-gc
  --json                 print the JSON report to stdout instead of the table
  --out DIR              where to write latest.{json,md,svg} (default: bench/results)
  --help                 this text
Flags that take a value accept --flag value and --flag=value (--node-flags only the latter: its
value starts with --).`;

export interface Options {
  ops: Op[];
  shapes: string[];
  threads: number[];
  backends: string[];
  python: string;
  /** Node.js flags for the process that runs this package as users call it (bench/backends/ours.ts). */
  nodeFlags: string[];
  json: boolean;
  out?: string;
}

const DEFAULT_BACKENDS = ['native', 'js', 'onnxruntime', 'tfjs-wasm', 'torch', 'onednn'];
const ALL_BACKENDS = [...DEFAULT_BACKENDS, 'tfjs-cpu'];

/** A comma list, each value once: a repeat would run its cells twice and count them twice in the targets. */
export const list = (value: string | undefined) => (value === undefined ? undefined : [...new Set(value.split(',').filter(Boolean))]);

/** --threads: each count once (default 1 and the available parallelism), or undefined when one is not a positive integer. */
export function threadCounts(value: string | undefined): number[] | undefined {
  const threads = [...new Set(list(value)?.map(Number) ?? [1, availableParallelism()])];
  return threads.every((t) => Number.isInteger(t) && t >= 1) ? threads : undefined;
}

/** The options of a command line; throws a UsageError for anything it cannot run. */
export function parseOptions(argv: string[]): Options & { help: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        full: { type: 'boolean', default: false },
        issue12: { type: 'boolean', default: false },
        ops: { type: 'string' },
        shapes: { type: 'string' },
        threads: { type: 'string' },
        backends: { type: 'string' },
        python: { type: 'string', default: DEFAULT_PYTHON },
        'node-flags': { type: 'string', default: '' },
        json: { type: 'boolean', default: false },
        out: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    // parseArgs's messages name the flag; the hint after it repeats what USAGE says.
    throw new UsageError((e as Error).message.split('. To specify')[0]!, USAGE);
  }
  const ops = (list(values.ops) ?? OPS) as Op[];
  for (const op of ops) if (!OPS.includes(op)) throw new UsageError(`unknown op "${op}" (known: ${OPS.join(', ')})`, USAGE);
  const shapes = list(values.shapes) ?? (values.full ? ALL_CASES.map((c) => c.name) : values.issue12 ? [...DEFAULT_CASES, ...ISSUE12_EXTRA_CASES] : DEFAULT_CASES);
  for (const s of shapes) if (!ALL_CASES.some((c) => c.name === s)) throw new UsageError(`unknown shape "${s}" (known: ${ALL_CASES.map((c) => c.name).join(', ')})`, USAGE);
  const threads = threadCounts(values.threads);
  if (!threads) throw new UsageError('--threads takes positive integers, e.g. --threads 1,2', USAGE);
  const nodeFlags = values['node-flags'].split(/\s+/).filter(Boolean);
  for (const f of nodeFlags) if (!f.startsWith('--')) throw new UsageError(`--node-flags takes flags of node, such as --single-threaded-gc (not "${f}")`, USAGE);
  return {
    ops,
    shapes,
    threads,
    backends: list(values.backends) ?? (values.full ? ALL_BACKENDS : DEFAULT_BACKENDS),
    python: values.python,
    nodeFlags,
    json: values.json,
    out: values.out || undefined,
    help: values.help,
  };
}

/**
 * The options of this process's command line. `--help` prints the usage and exits 0; a command
 * line that cannot be run prints one line of why, then the usage, and exits 2 (no stack trace).
 */
export function commandLineOptions(argv = process.argv.slice(2)): Options {
  try {
    const { help, ...options } = parseOptions(argv);
    if (help) {
      console.log(USAGE);
      process.exit(0);
    }
    return options;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    exitWithError('bench', e);
  }
}
