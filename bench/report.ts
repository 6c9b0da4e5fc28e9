/** Benchmark results as console tables, a Markdown summary, JSON and an SVG chart. */
import { isKernel, KERNEL_PEERS, OURS, PEERS } from './backends/names';
import { bestKernelPeer, nodestOverDest, reuseOverDest, torchLayerOverLayer, torchOverNodest } from './ratios';
import type { Roof } from './roofline';
import { checkTargets, targetsMarkdown } from './targets';
import type { Summary } from './timing';
import type { Layout, Op } from './workload';

export interface BackendResult {
  name: string;
  status: 'ok' | 'skipped' | 'wrong' | 'error';
  note?: string;
  threadsUsed?: number;
  summary?: Summary;
  gbps?: number;
  /** max |out - native| / max(1, max |native|) on the first repetition. */
  error?: number;
}

export interface CellResult {
  op: Op;
  case: string;
  layout: Layout;
  shape: number[];
  threads: number;
  elements: number;
  bytesPerElement: number;
  backends: BackendResult[];
  /** The fastest-ISA native backend the speedups are taken from. */
  reference?: string;
  /** Its GB/s as a fraction of the DRAM triad at this thread count. */
  fractionOfTriad?: number;
  /** Every other backend's median / the reference's median. */
  speedups: Record<string, number>;
}

export interface Report {
  meta: Record<string, unknown>;
  roofs: Roof[];
  cells: CellResult[];
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3));

function cellText(b: BackendResult | undefined): string {
  if (!b) return '';
  if (b.status === 'skipped') return 'n/s';
  if (b.status === 'error') return 'error';
  const ms = fmt(b.summary!.median);
  return b.status === 'wrong' ? `WRONG ${ms}` : ms;
}

interface Table {
  title: string;
  /** What the table shows, in a sentence or two (Markdown only). */
  legend: string;
  header: string[];
  body: string[][];
}

const by = (c: CellResult, name: string) => c.backends.find((b) => b.name === name);
const times = (v: number | undefined) => (v === undefined ? '' : `${fmt(v)}x`);
const USER_PATHS: string[] = [...Object.values(OURS), ...Object.values(PEERS)];

/** Every ISA, the JS backend and the Node.js peers, all with their destinations where they take them. */
function kernelTable(report: Report): Table {
  const names = [...new Set(report.cells.flatMap((c) => c.backends.map((b) => b.name)))].filter((n) => !USER_PATHS.includes(n));
  const others = names.filter((n) => !n.startsWith('native-'));
  const header = ['op', 'case', 'T', ...names.map((n) => `${n} ms`), 'GB/s', 'of triad', ...others.map((n) => `x ${n}`)];
  const body = report.cells.map((c) => {
    const ref = c.reference && isKernel(c.reference) ? by(c, c.reference) : undefined;
    return [
      c.op,
      c.case,
      String(c.threads),
      ...names.map((n) => cellText(by(c, n))),
      ref?.gbps ? fmt(ref.gbps) : '',
      c.fractionOfTriad ? `${Math.round(c.fractionOfTriad * 100)}%` : '',
      ...others.map((n) => times(c.speedups[n])),
    ];
  });
  return {
    title: 'Kernels: every ISA, the JS backend and the Node.js peers',
    legend: [
      'Median ms per call (n/s: the backend cannot run that case). GB/s and "of triad" are the best',
      'native ISA under the minimal-traffic model (forwardTrain 12 B/element, inference 8, backward 20, trainStep 32)',
      'against the DRAM triad at the same thread count; "x name" is how many times faster it is than `name`.',
    ].join('\n'),
    header,
    body,
  };
}

/** Ours with destinations, without, the layer step, and PyTorch's and oneDNN's matching paths; null when none ran. */
function userPathTable(report: Report): Table | null {
  const ran = (name: string) => report.cells.some((c) => by(c, name)?.status === 'ok');
  const names = USER_PATHS.filter(ran);
  if (names.length === 0) return null;
  const ratios: [string, (c: CellResult) => string][] = [
    ['x best peer', (c) => {
      const best = bestKernelPeer(c);
      return best ? `${fmt(best.ratio)}x ${best.name}` : '';
    }],
    ['nodest / dest', (c) => times(nodestOverDest(c))],
    ['x torch, nodest', (c) => times(torchOverNodest(c))],
    ['layer-reuse / dest', (c) => times(reuseOverDest(c))],
    ['x torch-layer, layer', (c) => times(torchLayerOverLayer(c))],
  ];
  const shown = ratios.filter(([, value]) => report.cells.some((c) => value(c) !== ''));
  const header = ['op', 'case', 'T', 'kernel ms', 'GB/s', ...names.map((n) => `${n} ms`), ...shown.map(([h]) => h)];
  const body = report.cells.map((c) => {
    const ref = c.reference && isKernel(c.reference) ? by(c, c.reference) : undefined;
    return [c.op, c.case, String(c.threads), cellText(ref), ref?.gbps ? fmt(ref.gbps) : '', ...names.map((n) => cellText(by(c, n))), ...shown.map(([, value]) => value(c))];
  });
  return {
    title: 'What users get: with destinations, without, the layer step; PyTorch and oneDNN',
    legend: [
      'Median ms per call. kernel: the fastest native ISA with every destination given, validated once outside',
      `the timed call (its GB/s beside it); ${OURS.dest}: the public functions with every destination given;`,
      `${OURS.nodest}: the same allocating their outputs; ${OURS.layer} / ${OURS.layerReuse}: a BatchNorm`,
      `layer's forward + backward (trainStep) without / with reuseOutputs. ${PEERS.torch}: torch.nn.functional.batch_norm`,
      `and autograd; ${PEERS.torchNommap}: outputs on reused pages (native_batch_norm_backward.out; 1.13 has no CPU`,
      `forward .out, so its forward allocates from a malloc that keeps its pages); ${PEERS.torchLayer}: nn.BatchNorm`,
      `forward + backward; ${PEERS.onednn}: every buffer preallocated. "x best peer": the fastest of`,
      `${KERNEL_PEERS.join(', ')} over kernel; "x torch, nodest": ${PEERS.torch} over ${OURS.nodest};`,
      `"x torch-layer, layer": ${PEERS.torchLayer} over ${OURS.layer} (above 1: we are faster); "nodest / dest" and`,
      `"layer-reuse / dest": what the path costs over ${OURS.dest} (1 = nothing), measured in the same process.`,
    ].join('\n'),
    header,
    body,
  };
}

function tables(report: Report): Table[] {
  return [userPathTable(report), kernelTable(report)].filter((t): t is Table => t !== null);
}

function consoleTable({ header, body }: Table): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((v, i) => (i < 2 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function consoleTables(report: Report): string {
  return tables(report)
    .map((t) => `\n${t.title}\n\n${consoleTable(t)}`)
    .join('\n');
}

function markdownTable(t: Table): string[] {
  return [`## ${t.title}`, '', t.legend, '', `| ${t.header.join(' | ')} |`, `|${t.header.map(() => '---').join('|')}|`, ...t.body.map((r) => `| ${r.join(' | ')} |`), ''];
}

export function roofText(roofs: Roof[]): string {
  return roofs
    .map((r) => `${r.threads} thread(s): DRAM triad ${fmt(r.dramTriad)} GB/s, copy ${fmt(r.dramCopy)} GB/s; in-cache triad ${fmt(r.cacheTriad)} GB/s`)
    .join('\n');
}

/** The machine and the software measured, in a line each. */
export function machineText(meta: Report['meta']): string[] {
  const mib = (bytes: unknown) => `${Math.round(Number(bytes) / 1024 ** 2)} MiB`;
  const peers = Object.entries((meta.peers ?? {}) as Record<string, string>).map(([name, v]) => `${name} ${v}`);
  return [
    `CPU: ${String(meta.cpu)} (${String(meta.cores)} logical cores), last-level cache ${mib(meta.lastLevelCacheBytes)}; our ISAs here: ${String(meta.isas)}.`,
    `Node ${String(meta.node)}; batchnorm ${String(meta.version)}${peers.length ? `; peers: ${peers.join(', ')}` : ''}.`,
  ];
}

export function markdown(report: Report, command: string): string {
  const m = report.meta;
  const notes = [...new Set(report.cells.flatMap((c) => c.backends.filter((b) => b.note && b.status !== 'ok').map((b) => `${b.name}: ${b.note}`)))];
  return [
    `# Benchmark: ${String(m.date)}`,
    '',
    ...machineText(m),
    `Command: \`${command}\``,
    '',
    'Memory bandwidth measured in the same run:',
    '',
    ...report.roofs.map((r) => `- ${r.threads} thread(s): DRAM triad ${fmt(r.dramTriad)} GB/s, copy ${fmt(r.dramCopy)} GB/s; in-cache triad ${fmt(r.cacheTriad)} GB/s`),
    '',
    ...tables(report).flatMap(markdownTable),
    ...(notes.length ? [`Notes: ${notes.join('; ')}.`, ''] : []),
    '## Targets',
    '',
    'The issues\' targets, checked on this run (`bench/targets.ts`; out of cache means 8x64x224x224,',
    'as in the issue):',
    '',
    targetsMarkdown(checkTargets(report)),
  ].join('\n');
}

const COLORS = ['#1b5e20', '#43a047', '#a5d6a7', '#00838f', '#4dd0e1', '#80deea', '#1565c0', '#ef6c00', '#8e24aa', '#6d4c41', '#c62828', '#f9a825', '#ad1457', '#546e7a'];

/** Grouped bars of GB/s per backend per case, one panel per thread count, with the roofs. */
export function svgChart(report: Report): string {
  const names = [...new Set(report.cells.flatMap((c) => c.backends.map((b) => b.name)))];
  const threadCounts = [...new Set(report.cells.map((c) => c.threads))];
  const bar = 7;
  const group = names.length * bar + 14;
  const left = 50;
  const panelHeight = 230;
  const labelSpace = 120;
  const maxCells = Math.max(...threadCounts.map((t) => report.cells.filter((c) => c.threads === t).length));
  const width = Math.max(left + maxCells * group + 90, left + names.length * 110); // room for the last rotated label
  const height = threadCounts.length * (panelHeight + labelSpace + 30) + 40;
  const top = Math.max(
    ...report.cells.flatMap((c) => c.backends.map((b) => b.gbps ?? 0)),
    ...report.roofs.map((r) => r.dramTriad),
  );
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="10">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  names.forEach((n, i) => {
    out.push(`<rect x="${left + i * 110}" y="8" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${left + i * 110 + 14}" y="17">${n}</text>`);
  });
  threadCounts.forEach((t, p) => {
    const y0 = 40 + p * (panelHeight + labelSpace + 30);
    const base = y0 + panelHeight;
    const scale = (v: number) => (v / top) * (panelHeight - 40); // headroom under the panel title
    out.push(`<text x="${left}" y="${y0 + 8}" font-size="12">${t} thread(s): effective GB/s (minimal traffic)</text>`);
    out.push(`<line x1="${left}" y1="${base}" x2="${width - 10}" y2="${base}" stroke="black"/>`);
    for (let v = 0; v <= top; v += top > 100 ? 50 : top > 40 ? 20 : 10) {
      out.push(`<text x="${left - 6}" y="${base - scale(v) + 3}" text-anchor="end">${v}</text>`);
    }
    const roof = report.roofs.find((r) => r.threads === t);
    if (roof) {
      const y = base - scale(roof.dramTriad);
      out.push(`<line x1="${left}" y1="${y}" x2="${width - 10}" y2="${y}" stroke="#c62828" stroke-dasharray="5,3"/>`);
      out.push(`<text x="${width - 12}" y="${y - 3}" text-anchor="end" fill="#c62828">DRAM triad ${fmt(roof.dramTriad)} GB/s</text>`);
    }
    report.cells
      .filter((c) => c.threads === t)
      .forEach((c, g) => {
        const gx = left + 8 + g * group;
        names.forEach((n, i) => {
          const b = c.backends.find((r) => r.name === n);
          if (!b?.gbps || b.status !== 'ok') return;
          const h = scale(b.gbps);
          out.push(`<rect x="${gx + i * bar}" y="${base - h}" width="${bar - 1}" height="${h}" fill="${COLORS[i % COLORS.length]}"><title>${n} ${c.op} ${c.case}: ${fmt(b.gbps)} GB/s</title></rect>`);
        });
        out.push(`<text transform="translate(${gx + 3},${base + 6}) rotate(60)">${c.op.replace('forward', 'fwd')} ${c.case}</text>`);
      });
  });
  out.push('</svg>');
  return out.join('\n');
}
