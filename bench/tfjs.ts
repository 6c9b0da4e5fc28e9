/**
 * `npm run bench:tfjs`: TensorFlow.js with and without batchnorm/tfjs, on its cpu and wasm
 * backends (bench/tfjs-cases.ts), stock and ours timed interleaved (bench/timing.ts), outputs
 * checked against each other, and the issue's targets checked:
 *
 * - tf.batchNorm inference on [32, 56, 56, 64]: ours >= 10x stock, on wasm and on cpu;
 * - a BatchNormalization layer's training step on it: >= 10x stock wasm, >= 100x stock cpu;
 * - the example's fit step: measurably lower (ours' median below stock's p10).
 *
 * Writes bench/results/tfjs.{json,md} (or --out); prints the table and the targets.
 */
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';

import { exitWithError, integerFlag, listFlag, parseFlags } from '../examples/command-line';
import { environment, environmentLine, type Environment } from '../examples/tfjs-environment';
import { backendInfo, setNumThreads } from '../lib/index';
import { packageRoot } from '../lib/loader';
import type { TargetCheck } from './targets';
import { CASES, prepareCase, restoreStock, type CaseInfo, type CaseName, type TfBackend, type Variant } from './tfjs-cases';
import { relativeError, summarize, timeInterleaved, type Summary } from './timing';

const USAGE = `npm run bench:tfjs -- [flags]
  --cases=a,b        ${CASES.join(', ')} (default: all)
  --backends=a,b     cpu, wasm (default: both)
  --shape=AxBxCxD    the inference and training tensor, channels-last (default: 32x56x56x64)
  --batch=N          the fit step's batch size (default: 32)
  --threads=N        threads of our native kernels (default: the package's default)
  --json             print the JSON report instead of the table
  --out=DIR          where to write tfjs.{json,md} (default: bench/results)`;

/** Ours and stock float32 results must agree this closely (SPEC 5's y/dx form, loosely: float32 peers). */
const TOLERANCE = 1e-3;

interface Row {
  info: CaseInfo;
  backend: TfBackend;
  stock: Summary;
  ours: Summary;
  speedup: number;
  error: number;
}

interface Target {
  describe: string;
  met(row: Row): boolean;
}

const atLeast = (x: number): Target => ({ describe: `>= ${x}x faster than stock`, met: (r) => r.speedup >= x });
const measurablyLower: Target = { describe: "lower (ours' median below stock's p10)", met: (r) => r.ours.median < r.stock.p10 };
const TARGETS: Record<CaseName, Record<TfBackend, Target>> = {
  inference: { wasm: atLeast(10), cpu: atLeast(10) },
  training: { wasm: atLeast(10), cpu: atLeast(100) },
  fit: { wasm: measurablyLower, cpu: measurablyLower },
};

const FLAGS = {
  cases: { type: 'string', default: CASES.join(',') },
  backends: { type: 'string', default: 'wasm,cpu' },
  shape: { type: 'string', default: '32x56x56x64' },
  batch: { type: 'string', default: '32' },
  threads: { type: 'string' },
  json: { type: 'boolean', default: false },
  out: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

function options() {
  const values = parseFlags({ options: FLAGS }, USAGE);
  const list = <T extends string>(value: string, allowed: readonly T[], flag: string) => listFlag(value, allowed, flag, USAGE);
  const positive = (value: string, flag: string) => integerFlag(value, flag, 1, USAGE);
  return {
    cases: list(values.cases, CASES, 'cases'),
    backends: list(values.backends, ['wasm', 'cpu'] as const, 'backends'),
    shape: values.shape.split('x').map((d) => positive(d, 'shape')),
    batchSize: positive(values.batch, 'batch'),
    threads: values.threads === undefined ? undefined : positive(values.threads, 'threads'),
    json: values.json,
    out: values.out ?? join(packageRoot(), 'bench', 'results'),
  };
}

async function measure(name: CaseName, backend: TfBackend, opts: ReturnType<typeof options>): Promise<Row> {
  const prepared = await prepareCase(name, backend, opts);
  const order: Variant[] = ['stock', 'ours'];
  const runs = order.map((v) => prepared.variants[v]);
  const firstMs: number[] = [];
  for (const p of runs) {
    const start = performance.now();
    await p.run(); // warm-up; its output is checked below
    firstMs.push(performance.now() - start);
  }
  const error = relativeError(await prepared.variants.ours.output(), await prepared.variants.stock.output());
  const samples = await timeInterleaved(runs, firstMs, () => process.stderr.write('.'), prepared.limits);
  for (const p of runs) await p.dispose();
  restoreStock();
  const [stock, ours] = samples.map(summarize);
  return { info: prepared.info, backend, stock, ours, speedup: stock.median / ours.median, error };
}

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const spread = (s: Summary) => `${ms(s.median)} (${ms(s.p10)}-${ms(s.p90)}, n=${s.reps})`;

function checks(rows: Row[]): TargetCheck[] {
  return rows.map((r) => {
    const target = TARGETS[r.info.name][r.backend];
    const wrong = r.error > TOLERANCE;
    return {
      target: `${r.info.name} on tfjs-${r.backend}: ours ${target.describe}`,
      met: !wrong && target.met(r),
      detail: wrong ? `WRONG: outputs differ by ${r.error.toExponential(2)}` : `${r.speedup.toFixed(r.speedup >= 10 ? 1 : 2)}x (${ms(r.stock.median)} ms -> ${ms(r.ours.median)} ms)`,
    };
  });
}

function markdown(rows: Row[], targets: TargetCheck[], meta: Environment & { command: string }): string {
  const table = [
    '| case | shape | tfjs backend | stock ms | ours ms | speedup | max rel. difference |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.info.what} | ${r.info.shape.join('x')} | ${r.backend} | ${spread(r.stock)} | ${spread(r.ours)} | ${r.speedup.toFixed(1)}x | ${r.error.toExponential(1)} |`),
  ];
  const targetTable = ['| target | status | detail |', '|---|---|---|', ...targets.map((t) => `| ${t.target} | ${t.met ? 'met' : 'MISSED'} | ${t.detail} |`)];
  return [
    `# TensorFlow.js benchmark: ${meta.date}`,
    '',
    environmentLine(meta),
    `Command: \`${meta.command}\``,
    '',
    'Milliseconds per call: median (p10-p90, n calls), stock and ours interleaved.',
    '',
    ...table,
    '',
    ...targetTable,
  ].join('\n');
}

async function main() {
  const opts = options();
  if (opts.threads !== undefined) setNumThreads(opts.threads);
  await import('@tensorflow/tfjs-backend-wasm');
  const rows: Row[] = [];
  for (const name of opts.cases) {
    for (const backend of opts.backends) {
      process.stderr.write(`${name} on tfjs-${backend} `);
      rows.push(await measure(name, backend, opts));
      process.stderr.write('\n');
    }
  }
  const meta = { ...environment(backendInfo()), command: `npm run bench:tfjs${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}` };
  const targets = checks(rows);
  const md = markdown(rows, targets, meta);
  mkdirSync(opts.out, { recursive: true });
  writeFileSync(join(opts.out, 'tfjs.json'), JSON.stringify({ meta, rows, targets }, null, 2) + '\n');
  writeFileSync(join(opts.out, 'tfjs.md'), md + '\n');
  console.log(opts.json ? JSON.stringify({ meta, rows, targets }, null, 2) : `${md}\n\nwritten: ${join(opts.out, 'tfjs.{json,md}')}`);
}

main().catch((e) => exitWithError('bench:tfjs', e));
