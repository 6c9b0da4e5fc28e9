/**
 * The benchmark issue's targets, checked against one run. Which cases count as out of cache
 * follows the issue (and ANCHORS.md): only 8x64x224x224 (103 MB) exceeds a 32 MB last-level
 * cache; every other case counts as in cache, whatever this machine's cache really holds.
 */
import type { CellResult, Report } from './report';

export interface TargetCheck {
  target: string;
  /** undefined: no cell of this run applies. */
  met?: boolean;
  detail: string;
}

const OUT_OF_CACHE = /^8x64x224x224-/;
export const outOfCache = (c: CellResult) => OUT_OF_CACHE.test(c.case);

const label = (c: CellResult) => `${c.op} ${c.case} T=${c.threads}`;
const ratio = (v: number) => `${v.toFixed(v >= 10 ? 1 : 2)}x`;
const percent = (v: number) => `${Math.round(v * 100)}%`;

/** All cells must satisfy `ok(value)`; reports the worst value and every miss. */
function check(target: string, cells: CellResult[], value: (c: CellResult) => number | undefined, ok: (v: number) => boolean, show: (v: number) => string): TargetCheck {
  const measured = cells.flatMap((c) => {
    const v = value(c);
    return v === undefined ? [] : [{ c, v }];
  });
  if (measured.length === 0) return { target, detail: 'not measured in this run' };
  const misses = measured.filter((m) => !ok(m.v));
  const worst = measured.reduce((a, b) => (b.v < a.v ? b : a));
  const detail =
    misses.length === 0
      ? `${measured.length} cells, lowest ${show(worst.v)} (${label(worst.c)})`
      : `missed in ${misses.length} of ${measured.length} cells: ${misses.map((m) => `${label(m.c)} ${show(m.v)}`).join('; ')}`;
  return { target, met: misses.length === 0, detail };
}

export function checkTargets(report: Report): TargetCheck[] {
  const cells = report.cells.filter((c) => c.reference?.startsWith('native-'));
  const oneThread = cells.filter((c) => c.threads === 1);
  const peers = [...new Set(cells.flatMap((c) => Object.keys(c.speedups)))].filter((n) => n !== 'js');
  const slowestPeer = (c: CellResult) => {
    const shared = peers.map((p) => c.speedups[p]).filter((v): v is number => v !== undefined);
    return shared.length ? Math.min(...shared) : undefined;
  };
  const trainOrBackward = (c: CellResult) => c.op === 'forwardTrain' || c.op === 'backward';
  return [
    check('native >= 5x the JS backend, out-of-cache cases, 1 thread', oneThread.filter(outOfCache), (c) => c.speedups.js, (v) => v >= 5, ratio),
    check('native >= 10x the JS backend, in-cache cases, 1 thread', oneThread.filter((c) => !outOfCache(c)), (c) => c.speedups.js, (v) => v >= 10, ratio),
    check('native faster than every peer on every shared case, every thread count', cells, slowestPeer, (v) => v > 1, ratio),
    check('out-of-cache forwardTrain and backward >= 80% of the DRAM triad', cells.filter((c) => outOfCache(c) && trainOrBackward(c)), (c) => c.fractionOfTriad, (v) => v >= 0.8, percent),
    check(
      '8x64x224x224 NCHW forwardTrain > 100% of the DRAM triad (channel by channel)',
      cells.filter((c) => c.case === '8x64x224x224-nchw' && c.op === 'forwardTrain'),
      (c) => c.fractionOfTriad,
      (v) => v > 1,
      percent,
    ),
  ];
}

export function targetsMarkdown(checks: TargetCheck[]): string {
  const mark = (t: TargetCheck) => (t.met === undefined ? 'n/a' : t.met ? 'met' : 'MISSED');
  return ['| target | status | detail |', '|---|---|---|', ...checks.map((t) => `| ${t.target} | ${mark(t)} | ${t.detail} |`)].join('\n');
}

export function targetsText(checks: TargetCheck[]): string {
  return checks.map((t) => `${t.met === undefined ? 'n/a   ' : t.met ? 'met   ' : 'MISSED'}  ${t.target}: ${t.detail}`).join('\n');
}
