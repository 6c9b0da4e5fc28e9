/**
 * `npm run bench:fused` on its smallest configuration: it must run, check the three forms'
 * outputs against each other, report GB/s and ratios, judge the issue's targets and write its
 * reports.
 */
import { execFileSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { expect, test } from 'vitest';

import { packageRoot } from '../../lib/loader';

test('bench:fused on one small case: every op timed in three forms, the targets judged, the reports written', () => {
  const script = join(packageRoot(), 'dist-bench', 'bench', 'fused.js');
  if (!existsSync(script)) throw new Error('dist-bench/ is missing: run `npm run build` first');
  const dir = mkdtempSync(join(tmpdir(), 'batchnorm-bench-fused-'));
  try {
    checkRun(script, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function checkRun(script: string, dir: string) {
  const out = execFileSync(process.execPath, [script, '--shapes=256x1024-nc', '--threads=1', '--skip-roof', '--json', `--out=${dir}`], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, BATCHNORM_BACKEND: '' },
  });
  const report = JSON.parse(out);
  expect(report.cells.map((c: { op: string }) => c.op)).toEqual(['train-relu', 'train-add-relu', 'backward-relu', 'backward-relu-dresidual']);
  for (const cell of report.cells) {
    for (const form of ['plain', 'fused', 'unfused']) {
      expect(cell.ms[form].reps, `${cell.op} ${form}`).toBeGreaterThanOrEqual(3);
      expect(cell.gbps[form]).toBeGreaterThan(0);
    }
    expect(cell.errors.fused).toBeLessThanOrEqual(4e-5);
    expect(cell.fusedOverPlain).toBeGreaterThan(0);
    expect(cell.speedup).toBeGreaterThan(0);
  }
  // In-cache only: three targets judged (met or missed, a sanitizer build is slow), the out-of-cache one not.
  expect(report.targets.map((t: { met?: boolean }) => t.met !== undefined)).toEqual([true, true, true, false]);
  expect(JSON.parse(readFileSync(join(dir, 'fused.json'), 'utf8')).cells).toHaveLength(4);
  expect(readFileSync(join(dir, 'fused.md'), 'utf8')).toContain('| train-add-relu | 256x1024-nc | 1 |');
}
