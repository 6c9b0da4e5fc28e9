/**
 * `npm run bench:fused`: fused BatchNorm + ReLU and BatchNorm + residual add + ReLU (SPEC
 * section 7) against plain BatchNorm and against the unfused sequence (bench/fused-ops.ts), at
 * each thread count, in GB/s under the fused op's minimal traffic (the same bytes for all three
 * forms, so GB/s compare as speeds). The three forms run interleaved (bench/timing.ts); each
 * one's output is checked against the unfused one's first. Prints a table and the issue's
 * targets; writes bench/results/fused.{json,md}.
 */
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { parseArgs } from 'util';

import { backendInfo, setNumThreads } from '../lib/index';
import { packageRoot } from '../lib/loader';
import { loadNative } from './backends/batchnorm';
import { list, threadCounts } from './cli';
import { FUSED_BYTES_PER_ELEMENT, FUSED_OPS, prepareForms, type FusedInputs, type FusedOpName } from './fused-ops';
import { machine } from './machine';
import { lastLevelCacheBytes, measureRoof, type Roof } from './roofline';
import { check, ratio, targetsMarkdown, targetsText, type TargetCheck } from './targets';
import { relativeError, summarize, timeInterleaved, type Summary } from './timing';
import { findCases, noise, type Case } from './workload';

const USAGE = `npm run bench:fused -- [flags]
  --ops=a,b      ${FUSED_OPS.join(', ')} (default: all)
  --shapes=a,b   cases of bench/workload.ts (default: ${defaultShapes().join(',')})
  --threads=1,N  thread counts (default: 1 and all cores)
  --json         print the JSON report instead of the table
  --out=DIR      where to write fused.{json,md} (default: bench/results)
  --skip-roof    do not measure the memory bandwidth (context only; it takes seconds)`;

/** The issue's cases: the in-cache and the out-of-cache image shape, in both layouts. */
function defaultShapes(): string[] {
  return ['32x64x56x56-nchw', '32x64x56x56-nhwc', '8x64x224x224-nchw', '8x64x224x224-nhwc'];
}

/** Ours must agree with the unfused form within twice SPEC's y/dx tolerance. */
const TOLERANCE = 4e-5;
const FORMS = ['plain', 'fused', 'unfused'] as const;
type Form = (typeof FORMS)[number];

interface FusedCell {
  op: FusedOpName;
  case: string;
  threads: number;
  elements: number;
  bytesPerElement: number;
  ms: Record<Form, Summary>;
  gbps: Record<Form, number>;
  /** fused ms / plain ms: the fusion's cost over plain BatchNorm. */
  fusedOverPlain: number;
  /** unfused ms / fused ms: the fusion's gain. */
  speedup: number;
  /** Largest difference of each form's output from the unfused one's (SPEC section 5 form). */
  errors: Record<Form, number>;
}

function options(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      ops: { type: 'string' },
      shapes: { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      'skip-roof': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const ops = (list(values.ops) ?? FUSED_OPS) as FusedOpName[];
  for (const op of ops) if (!FUSED_OPS.includes(op)) throw new Error(`unknown op "${op}"\n${USAGE}`);
  const threads = threadCounts(values.threads);
  if (!threads) throw new Error(`--threads takes positive integers\n${USAGE}`);
  return { ops, cases: findCases(list(values.shapes) ?? defaultShapes()), threads, json: values.json, out: values.out, roof: !values['skip-roof'] };
}

function inputsFor(c: Case): FusedInputs {
  const C = c.shape[c.axis < 0 ? c.shape.length + c.axis : c.axis];
  return { x: noise(c.elements, 1, 0.5, 6), residual: noise(c.elements, 7, 0, 2), dy: noise(c.elements, 2, 0, 2), gamma: noise(C, 3, 1, 0.5), beta: noise(C, 4, 0, 1) };
}

async function runCell(op: FusedOpName, c: Case, threads: number, inputs: FusedInputs): Promise<FusedCell> {
  setNumThreads(threads);
  const forms = prepareForms(op, c, inputs);
  const variants = FORMS.map((f) => forms[f]);
  const firstMs = variants.map((v) => {
    const start = performance.now();
    v.run(); // warm-up (first touch of the destinations), and the outputs checked below
    return performance.now() - start;
  });
  const reference = forms.unfused.output();
  const errors = Object.fromEntries(FORMS.map((f) => [f, relativeError(forms[f].output(), reference)])) as Record<Form, number>;
  for (const f of ['fused', 'unfused'] as const) {
    if (!(errors[f] <= TOLERANCE)) throw new Error(`${op} ${c.name}: the ${f} output differs from the unfused one by ${errors[f]}`);
  }
  const mismatch = forms.otherOutputsMismatch();
  if (mismatch) throw new Error(`${op} ${c.name}: ${mismatch}`);
  const samples = await timeInterleaved(variants.map((v) => ({ run: () => v.run(), output: () => v.output(), dispose: () => undefined })), firstMs, () => undefined);
  const bytes = FUSED_BYTES_PER_ELEMENT[op] * c.elements;
  const ms = Object.fromEntries(FORMS.map((f, k) => [f, summarize(samples[k])])) as Record<Form, Summary>;
  return {
    op, case: c.name, threads, elements: c.elements, bytesPerElement: FUSED_BYTES_PER_ELEMENT[op], ms, errors,
    gbps: Object.fromEntries(FORMS.map((f) => [f, bytes / ms[f].median / 1e6])) as Record<Form, number>,
    fusedOverPlain: ms.fused.median / ms.plain.median,
    speedup: ms.unfused.median / ms.fused.median,
  };
}

/** The issue's targets. Out of cache means 8x64x224x224 (103 MB per array), as bench/targets.ts. */
function fusedTargets(cells: FusedCell[]): TargetCheck[] {
  const of = (op: FusedOpName) => cells.filter((c) => c.op === op);
  const within = (limit: number) => (v: number) => v <= limit;
  return [
    check('fused forwardTrain BN+ReLU within 1.1x of plain forwardTrain', of('train-relu'), (c) => c.fusedOverPlain, within(1.1), ratio, 'higher'),
    check('fused forwardTrain BN+add+ReLU within 1.35x of plain forwardTrain', of('train-add-relu'), (c) => c.fusedOverPlain, within(1.35), ratio, 'higher'),
    check('fused backward (ReLU) within 1.15x of plain backward', of('backward-relu'), (c) => c.fusedOverPlain, within(1.15), ratio, 'higher'),
    check('every fused op >= 1.4x faster than the unfused sequence out of cache', cells.filter((c) => c.case.startsWith('8x64x224x224-')), (c) => c.speedup, (v) => v >= 1.4, ratio),
  ];
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

function table(cells: FusedCell[]): string {
  const rows = cells.map((c) =>
    [c.op, c.case, c.threads, fmt(c.ms.plain.median), fmt(c.ms.fused.median), fmt(c.ms.unfused.median), fmt(c.gbps.fused), fmt(c.gbps.unfused), ratio(c.fusedOverPlain), ratio(c.speedup)].join(' | '),
  );
  return ['| op | case | T | plain ms | fused ms | unfused ms | fused GB/s | unfused GB/s | fused / plain | unfused / fused |', '|---|---|---|---|---|---|---|---|---|---|', ...rows.map((r) => `| ${r} |`)].join('\n');
}

function roofLine(roofs: Roof[]): string {
  if (roofs.length === 0) return 'memory bandwidth not measured';
  return roofs.map((r) => `${r.threads} thread(s): DRAM triad ${fmt(r.dramTriad)} GB/s, in-cache triad ${fmt(r.cacheTriad)} GB/s`).join('; ');
}

async function main() {
  const opts = options(process.argv.slice(2));
  const native = loadNative();
  const llc = lastLevelCacheBytes();
  const roofs = 'reason' in native || !opts.roof ? [] : opts.threads.map((t) => measureRoof(native.binding, t, llc));
  const cells: FusedCell[] = [];
  for (const c of opts.cases) {
    const inputs = inputsFor(c);
    for (const threads of opts.threads) {
      for (const op of opts.ops) {
        process.stderr.write(`bench:fused ${op} ${c.name} T=${threads}\n`);
        cells.push(await runCell(op, c, threads, inputs));
      }
    }
  }
  const info = backendInfo();
  const targets = fusedTargets(cells);
  const meta = { ...machine(), lastLevelCacheBytes: llc, backend: info.backend, isa: info.isa, version: info.version };
  const report = { meta, roofs, cells, targets };
  const command = `npm run bench:fused${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const markdown = [
    `# Fused BatchNorm benchmark`,
    '',
    `\`${command}\` on ${meta.cpu} (${meta.backend}, ${meta.isa}), ${meta.date}. ${roofLine(roofs)}.`,
    '',
    'GB/s under the fused minimal traffic: BN+ReLU 12 B/element, BN+add+ReLU 16, backward 20, with dresidual 24, each plus the 1-bit mask. Unfused: the plain call and a TypeScript loop (bench/fused-ops.ts).',
    '',
    table(cells),
    '',
    targetsMarkdown(targets),
  ].join('\n');
  const dir = opts.out ?? join(packageRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'fused.json'), JSON.stringify(report, null, 2));
  writeFileSync(join(dir, 'fused.md'), markdown + '\n');
  if (opts.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  console.log(`${meta.backend} ${meta.isa}; ${roofLine(roofs)}\n`);
  console.log(table(cells));
  console.log(`\nTargets:\n${targetsText(targets)}\n\nwritten: ${join(dir, 'fused.{json,md}')}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
