/** bench/targets.ts: the targets judged from a run's cells. */
import { describe, expect, test } from 'vitest';

import type { CellResult, Report } from '../bench/report';
import { checkTargets } from '../bench/targets';

function cell(op: CellResult['op'], name: string, threads: number, fractionOfTriad: number, speedups: Record<string, number>): CellResult {
  return { op, case: name, layout: name.endsWith('nhwc') ? 'nhwc' : 'nchw', shape: [], threads, elements: 1, bytesPerElement: 12, backends: [], reference: 'native-avx2', fractionOfTriad, speedups };
}
const report = (cells: CellResult[]): Report => ({ meta: {}, roofs: [], cells });
const byTarget = (r: Report) => Object.fromEntries(checkTargets(r).map((t) => [t.target.split(',')[0].split(' (')[0], t]));

describe('checkTargets', () => {
  test('all met', () => {
    const t = byTarget(
      report([
        cell('forwardTrain', '8x64x224x224-nchw', 1, 1.2, { js: 6, onnxruntime: 3 }),
        cell('backward', '8x64x224x224-nhwc', 2, 0.9, { js: 9 }),
        cell('forwardTrain', '32x64x56x56-nchw', 1, 0.7, { js: 11 }),
      ]),
    );
    expect(Object.values(t).every((x) => x.met)).toBe(true);
    expect(t['native >= 5x the JS backend'].detail).toContain('lowest 6.00x');
  });

  test('each miss is named, with its cell and value', () => {
    const t = byTarget(
      report([
        cell('forwardTrain', '8x64x224x224-nchw', 1, 0.95, { js: 4, onnxruntime: 0.9 }),
        cell('forwardInference', '32x64x56x56-nchw', 1, 0.7, { js: 3.5 }),
        cell('backward', '8x64x224x224-nhwc', 2, 0.79, { js: 9 }),
      ]),
    );
    expect(t['native >= 5x the JS backend'].met).toBe(false);
    expect(t['native >= 10x the JS backend'].detail).toContain('forwardInference 32x64x56x56-nchw T=1 3.50x');
    expect(t['native faster than every peer on every shared case'].met).toBe(false);
    expect(t['out-of-cache forwardTrain and backward >= 80% of the DRAM triad'].detail).toContain('backward 8x64x224x224-nhwc T=2 79%');
    expect(t['8x64x224x224 NCHW forwardTrain > 100% of the DRAM triad'].met).toBe(false);
  });

  test('targets without cells are not judged', () => {
    const t = byTarget(report([cell('forwardInference', '256x1024-nc', 2, 1, { js: 20 })]));
    expect(t['native >= 5x the JS backend'].met).toBeUndefined();
    expect(t['native >= 5x the JS backend'].detail).toBe('not measured in this run');
  });
});
