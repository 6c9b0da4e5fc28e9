/** bench/targets.ts: the issues' targets judged from a run's cells. */
import { describe, expect, test } from 'vitest';

import type { CellResult, Report } from '../bench/report';
import { checkTargets } from '../bench/targets';

function cell(op: CellResult['op'], name: string, threads: number, fractionOfTriad: number, speedups: Record<string, number>): CellResult {
  return { op, case: name, layout: name.endsWith('nhwc') ? 'nhwc' : 'nchw', shape: [], threads, elements: 1, bytesPerElement: 12, backends: [], reference: 'native-avx2', fractionOfTriad, speedups };
}
const report = (cells: CellResult[]): Report => ({ meta: {}, roofs: [], cells });
const byTarget = (r: Report) => Object.fromEntries(checkTargets(r).map((t) => [t.target.split(',')[0].split(' (')[0], t]));
const byFullName = (r: Report) => Object.fromEntries(checkTargets(r).map((t) => [t.target, t]));

describe('checkTargets: our outputs', () => {
  const agreement = (r: Report) => checkTargets(r)[0];

  test("a wrong or failed path of ours is a miss, not a cell left unjudged; a wrong peer is not ours", () => {
    const ok = cell('forwardTrain', '8x64x224x224-nchw', 1, 1.2, { js: 6 });
    ok.backends = [{ name: 'native-avx2', status: 'ok' }, { name: 'js', status: 'ok' }, { name: 'torch', status: 'wrong' }];
    expect(agreement(report([ok]))).toMatchObject({ met: true, detail: '1 cell' });
    const wrong = { ...ok, backends: [...ok.backends, { name: 'native-nodest', status: 'wrong' as const }, { name: 'native-layer', status: 'error' as const }] };
    expect(agreement(report([ok, wrong]))).toMatchObject({ met: false, detail: 'failed in 2 path-cell(s): native-nodest forwardTrain 8x64x224x224-nchw T=1 wrong; native-layer forwardTrain 8x64x224x224-nchw T=1 error' });
  });

  test('cells where only the reference of ours ran compared nothing: not judged, not met', () => {
    const alone = cell('forwardTrain', '256x1024-nc', 1, 1, {});
    alone.reference = 'js';
    alone.backends = [{ name: 'js', status: 'ok' }, { name: 'torch', status: 'ok' }];
    const judged = agreement(report([alone]));
    expect(judged.met).toBeUndefined();
    expect(judged.detail).toBe('not measured in this run');
    const compared = { ...alone, reference: 'native-avx2', backends: [{ name: 'native-avx2', status: 'ok' as const }, ...alone.backends] };
    expect(agreement(report([alone, compared]))).toMatchObject({ met: true, detail: '1 cell' });
  });
});

test('a cell whose reference is a user path (no native-<isa> in the run) judges no kernel target', () => {
  const c = cell('forwardTrain', '256x1024-nc', 1, 0.9, { torch: 0.8, js: 20 });
  c.reference = 'native-nodest';
  const t = byTarget(report([c]));
  expect(t['with destinations at least as fast as the best of PyTorch and oneDNN'].met).toBeUndefined();
  expect(t['native >= 10x the JS backend'].met).toBeUndefined();
});

describe('checkTargets: the first benchmark issue', () => {
  test('all met', () => {
    const t = byTarget(
      report([
        cell('forwardTrain', '8x64x224x224-nchw', 1, 1.2, { js: 6, onnxruntime: 3 }),
        cell('backward', '8x64x224x224-nhwc', 2, 0.9, { js: 9 }),
        cell('forwardTrain', '32x64x56x56-nchw', 1, 0.7, { js: 11 }),
      ]),
    );
    for (const name of ['native >= 5x the JS backend', 'native >= 10x the JS backend', 'native faster than every Node.js peer', 'out-of-cache forwardTrain and backward >= 80% of the DRAM triad']) {
      expect(t[name].met, name).toBe(true);
    }
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
    expect(t['native faster than every Node.js peer'].met).toBe(false);
    expect(t['out-of-cache forwardTrain and backward >= 80% of the DRAM triad'].detail).toContain('backward 8x64x224x224-nhwc T=2 79%');
    expect(t['8x64x224x224 NCHW forwardTrain > 100% of the DRAM triad'].met).toBe(false);
  });

  test('targets without cells are not judged', () => {
    const t = byTarget(report([cell('forwardInference', '256x1024-nc', 2, 1, { js: 20 })]));
    expect(t['native >= 5x the JS backend'].met).toBeUndefined();
    expect(t['native >= 5x the JS backend'].detail).toBe('not measured in this run');
  });

  test('training steps count against the Node.js peers (tfjs has no backward without its forward), not against the JS backend or the roof', () => {
    const t = byTarget(report([cell('trainStep', '8x64x224x224-nhwc', 1, 0.5, { js: 2, 'tfjs-wasm': 0.5 })]));
    expect(t['native >= 5x the JS backend'].met).toBeUndefined();
    expect(t['out-of-cache forwardTrain and backward >= 80% of the DRAM triad'].met).toBeUndefined();
    expect(t['native faster than every Node.js peer']).toMatchObject({ met: false, detail: 'missed in 1 of 1 cell: trainStep 8x64x224x224-nhwc T=1 0.50x' });
  });
});

describe('checkTargets: the speed users get (issue 11)', () => {
  test('no destinations: against PyTorch (ours over theirs) and against the same public call with destinations', () => {
    const t = byFullName(
      report([
        cell('forwardTrain', '256x1024-nc', 1, 1, { 'native-dest': 1.1, 'native-nodest': 1.32, torch: 1.65 }),
        cell('backward', '8x64x224x224-nchw', 2, 1, { 'native-dest': 1.25, 'native-nodest': 2, torch: 1.5 }),
      ]),
    );
    const vsTorch = t["no destinations at least as fast as PyTorch's allocating API"];
    expect(vsTorch.met).toBe(false);
    expect(vsTorch.detail).toBe('missed in 1 of 2 cells: backward 8x64x224x224-nchw T=2 0.75x');
    const vsDest = t['no destinations within 1.5x of the same call with destinations'];
    expect(vsDest.met).toBe(false);
    expect(vsDest.detail).toBe('missed in 1 of 2 cells: backward 8x64x224x224-nchw T=2 1.60x');
  });

  test('without the public calls with destinations in the run, what the paths cost over them is not judged', () => {
    const t = byFullName(report([cell('trainStep', '256x1024-nc', 1, 1, { 'native-nodest': 1.2, 'native-layer-reuse': 1.1 })]));
    expect(t['no destinations within 1.5x of the same call with destinations'].met).toBeUndefined();
    expect(t['layer step with reuseOutputs within 1.15x of forwardTrain + backward with destinations'].met).toBeUndefined();
  });

  test('the layer step: with reuse against the public functions with destinations, without against nn.BatchNorm', () => {
    const steps = [
      cell('trainStep', '32x64x56x56-nhwc', 1, 1, { 'native-dest': 1.1, 'native-layer': 1.5, 'native-layer-reuse': 1.21, 'torch-layer': 1.8 }),
      cell('trainStep', '32x64x56x56-nhwc', 2, 1, { 'native-dest': 1.25, 'native-layer': 2, 'native-layer-reuse': 1.4, 'torch-layer': 2.5 }),
    ];
    const t = byFullName(report(steps));
    expect(t['layer step with reuseOutputs within 1.15x of forwardTrain + backward with destinations']).toEqual(
      expect.objectContaining({ met: true, detail: '2 cells, highest 1.12x (trainStep 32x64x56x56-nhwc T=2)' }),
    );
    expect(t["layer step without reuse at least as fast as PyTorch's nn.BatchNorm step"]).toEqual(
      expect.objectContaining({ met: true, detail: '2 cells, lowest 1.20x (trainStep 32x64x56x56-nhwc T=1)' }),
    );
  });
});

describe('checkTargets: the kernels against PyTorch and oneDNN (issue 12)', () => {
  const every = 'with destinations at least as fast as the best of PyTorch and oneDNN, every cell (within 5% is a tie)';
  const median = 'with destinations, the median cell >= 1.2x the best of PyTorch and oneDNN';

  test('the best peer decides; within 5% is a tie; the median is judged per thread count', () => {
    const t = byFullName(
      report([
        cell('forwardTrain', '256x1024-nc', 1, 1, { torch: 2, 'torch-nommap': 1.3, onednn: 1.5 }),
        cell('backward', '256x1024-nc', 1, 1, { torch: 1.1, onednn: 0.96 }),
        cell('forwardInference', '256x1024-nc', 1, 1, { torch: 1.4 }),
        cell('forwardTrain', '256x1024-nc', 2, 1, { onednn: 0.8 }),
        cell('trainStep', '256x1024-nc', 2, 1, { onednn: 0.5 }),
      ]),
    );
    expect(t[every].met).toBe(false);
    expect(t[every].detail).toBe('missed in 1 of 4 cells: forwardTrain 256x1024-nc T=2 0.80x');
    expect(t[`${median}, T=1`]).toEqual(expect.objectContaining({ met: true, detail: 'median 1.30x over 3 cells (lowest 0.96x, highest 1.40x)' }));
    expect(t[`${median}, T=2`]).toEqual(expect.objectContaining({ met: false, detail: 'median 0.80x over 1 cell (lowest 0.80x, highest 0.80x)' }));
  });

  test('many misses: the worst listed first, the rest counted', () => {
    const cells = [0.5, 0.6, 0.7, 0.8, 0.81, 0.82, 0.83, 0.84].map((r, k) => cell('backward', `${k + 1}x64x7x7-nchw`, 1, 1, { onednn: r }));
    const { detail } = byFullName(report(cells))[every];
    expect(detail).toMatch(/^missed in 8 of 8 cells: backward 1x64x7x7-nchw T=1 0.50x; backward 2x64x7x7-nchw T=1 0.60x; .*; 2 more$/);
  });
});
