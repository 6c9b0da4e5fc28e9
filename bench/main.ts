/**
 * `npm run bench`: native (every ISA) against the JavaScript backend and the peers a Node user
 * would otherwise pick, against the memory bandwidth measured in the same process.
 * Writes bench/results/latest.{json,md,svg}; prints a table (or JSON with --json).
 */
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';

import { SingleBar } from 'cli-progress';

import { backendInfo } from '../lib/index';
import { jsBackend } from '../lib/js-backend';
import { packageRoot } from '../lib/loader';
import { planForwardTrain } from '../lib/validate';
import { jsBench, loadNative, nativeBackends } from './backends/batchnorm';
import { isKernel, selected } from './backends/names';
import type { BenchBackend, Cell, Inputs, Prepared } from './backends/types';
import { commandLineOptions, type Options } from './cli';
import { machine } from './machine';
import { startPeers } from './peer-backends';
import { consoleTables, markdown, roofText, svgChart, type BackendResult, type CellResult, type Report } from './report';
import { lastLevelCacheBytes, measureRoof, type Roof } from './roofline';
import { relativeError, summarize, timeInterleaved, timeOnce } from './timing';
import { checkTargets, targetsText } from './targets';
import { BYTES_PER_ELEMENT, findCases, noise, type Case } from './workload';

/** Ours must match the reference within twice SPEC's y/dx tolerance; float32 peers within 1e-3. */
const TOLERANCE = { ours: 4e-5, peer: 1e-3 };

function log(message: string) {
  process.stderr.write(`${message}\n`);
}

function inputsFor(c: Case): Inputs {
  const C = c.shape[c.axis < 0 ? c.shape.length + c.axis : c.axis];
  const x = noise(c.elements, 1, 0.5, 6);
  const base = {
    x,
    dy: noise(c.elements, 2, 0, 2),
    gamma: noise(C, 3, 1, 0.5),
    beta: noise(C, 4, 0, 1),
    runningMean: noise(C, 5, 0.5, 0.2),
    runningVar: noise(C, 6, 3, 1),
    eps: 1e-5,
  };
  const stats = planForwardTrain(x, c.shape, { axis: c.axis });
  jsBackend.forwardTrain(stats);
  return { ...base, saveMean: stats.saveMean, saveInvStd: stats.saveInvStd };
}

async function runCell(cell: Cell, backends: BenchBackend[], tick: () => void): Promise<CellResult> {
  const results: BackendResult[] = [];
  const active: { b: BenchBackend; p: Prepared; r: BackendResult; firstMs: number }[] = [];
  for (const b of backends) {
    const why = b.unsupported(cell);
    const r: BackendResult = { name: b.name, status: 'skipped', note: why, threadsUsed: b.threadsUsed(cell.threads) };
    results.push(r);
    if (why) continue;
    try {
      const p = await b.prepare(cell);
      const firstMs = await timeOnce(p); // warm-up, and the output checked below
      active.push({ b, p, r, firstMs });
    } catch (e) {
      Object.assign(r, { status: 'error', note: (e as Error).message.split('\n')[0] });
    }
  }
  // The reference: the best native ISA (the first), else the JS backend, else the first that ran.
  // Ratios, GB/s against the roof and the targets are taken only from the kernels at an ISA:
  // a user path (native-nodest alone, say) would read as "kernel".
  const reference = active.find((a) => isKernel(a.b.name)) ?? active.find((a) => a.b.name === 'js') ?? active[0];
  const expected = reference && (await reference.p.output());
  for (const a of active) {
    a.r.error = relativeError(await a.p.output(), expected);
    const ours = a.b.name.startsWith('native-') || a.b.name === 'js';
    a.r.status = a.r.error <= (ours ? TOLERANCE.ours : TOLERANCE.peer) ? 'ok' : 'wrong';
    if (a.r.status === 'wrong') a.r.note = `output differs from ${reference.b.name} by ${a.r.error.toExponential(2)}`;
  }
  const samples = await timeInterleaved(
    active.map((a) => a.p),
    active.map((a) => a.firstMs),
    tick,
  );
  const bytes = BYTES_PER_ELEMENT[cell.op] * cell.c.elements;
  for (const [k, a] of active.entries()) {
    a.r.summary = summarize(samples[k]);
    a.r.gbps = bytes / a.r.summary.median / 1e6;
    await a.p.dispose();
  }
  const ref = reference?.r;
  const speedups: Record<string, number> = {};
  if (ref && isKernel(reference.b.name)) {
    for (const r of results) {
      if (r.status === 'ok' && r !== ref) speedups[r.name] = r.summary!.median / ref.summary!.median;
    }
  }
  return {
    op: cell.op,
    case: cell.c.name,
    layout: cell.c.layout,
    shape: cell.c.shape,
    threads: cell.threads,
    elements: cell.c.elements,
    bytesPerElement: BYTES_PER_ELEMENT[cell.op],
    backends: results,
    reference: reference?.b.name,
    speedups,
  };
}

/** Every cell of the run: case by case (inputs made once per case), thread count, op. */
async function runCells(opts: Options, backends: BenchBackend[], roofs: Roof[]): Promise<CellResult[]> {
  const cases = findCases(opts.shapes);
  const bar = new SingleBar({ stream: process.stderr, format: 'bench [{bar}] {value}/{total} cells | {cell}', hideCursor: true });
  bar.start(cases.length * opts.ops.length * opts.threads.length, 0, { cell: '' });
  const cells: CellResult[] = [];
  for (const c of cases) {
    const inputs = inputsFor(c);
    for (const threads of opts.threads) {
      for (const op of opts.ops) {
        bar.update({ cell: `${op} ${c.name} T=${threads}` });
        const result = await runCell({ op, c, threads, inputs }, backends, () => bar.update({}));
        const roof = roofs.find((r) => r.threads === threads);
        const ref = result.backends.find((b) => b.name === result.reference);
        if (roof && ref?.gbps && result.reference && isKernel(result.reference)) result.fractionOfTriad = ref.gbps / roof.dramTriad;
        cells.push(result);
        bar.increment();
      }
    }
  }
  bar.stop();
  return cells;
}

async function main(opts: Options) {
  const native = loadNative();
  const backends: BenchBackend[] = [];
  let roofs: Roof[] = [];
  const llc = lastLevelCacheBytes();
  if ('reason' in native) {
    log(`native backend unavailable (${native.reason}): running the rest`);
  } else {
    backends.push(...nativeBackends(native.binding, native.backend).filter((b) => selected(opts.backends, b.name)));
    log('measuring memory bandwidth ...');
    roofs = opts.threads.map((t) => measureRoof(native.binding, t, llc));
  }
  if (selected(opts.backends, 'js')) backends.push(jsBench);
  const peers = await startPeers(opts, log);
  backends.push(...peers.backends);

  let cells: CellResult[];
  try {
    cells = await runCells(opts, backends, roofs);
  } finally {
    peers.close();
  }

  const info = backendInfo();
  const report: Report = {
    meta: {
      ...machine(),
      lastLevelCacheBytes: llc,
      isas: 'reason' in native ? 'none (native unavailable)' : native.binding.info().supportedIsas,
      version: info.version,
      peers: peers.versions,
      threads: opts.threads,
      options: opts,
    },
    roofs,
    cells,
  };
  const dir = opts.out ?? join(packageRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  writeFileSync(join(dir, 'latest.json'), JSON.stringify(report, null, 2));
  writeFileSync(join(dir, 'latest.md'), markdown(report, command) + '\n');
  writeFileSync(join(dir, 'latest.svg'), svgChart(report) + '\n');
  if (opts.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    console.log(roofText(roofs));
    console.log(consoleTables(report));
    console.log(`\nTargets (bench/targets.ts):\n${targetsText(checkTargets(report))}`);
    console.log(`\nwritten: ${join(dir, 'latest.{json,md,svg}')}`);
  }
}

main(commandLineOptions()).catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
