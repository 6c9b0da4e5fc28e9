/**
 * The end-to-end check scripts' own checks (scripts/checks.sh, scripts/check-package.js), run in
 * a temp folder: a check must fail when what it checks is wrong, or it proves nothing.
 */
import { spawnSync } from 'child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { afterAll, describe, expect, test } from 'vitest';

import { packageRoot } from '../lib/loader';

const root = packageRoot();
const scratch = mkdtempSync(join(tmpdir(), 'batchnorm-checks-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs bash `script` with scripts/checks.sh sourced and `finish` at the end. */
function checks(script: string, args: string[] = []) {
  const r = spawnSync('bash', ['-c', `source scripts/checks.sh\n${script}\nfinish`, 'checks', ...args], { cwd: root, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout };
}

describe('check_vitest', () => {
  /** vitest's JSON report of a run of one file whose one test passed. */
  const report = join(scratch, 'report.json');
  writeFileSync(report, JSON.stringify({ numPassedTests: 1, numFailedTests: 0, numFailedTestSuites: 0, success: true, testResults: [{}] }));

  test('passes for a clean run', () => {
    const r = checks('check_vitest suites "$1" 0 1', [report]);
    expect(r).toMatchObject({ status: 0, stdout: expect.stringContaining('PASS suites') });
  });

  test('fails when vitest exited non-zero though every test passed (an unhandled error, a dead worker)', () => {
    const r = checks('check_vitest suites "$1" 1 1', [report]);
    expect(r).toMatchObject({ status: 1, stdout: expect.stringContaining('FAIL suites') });
  });

  test('fails without a report, or with fewer files than expected', () => {
    expect(checks('check_vitest suites "$1" 0 1', [join(scratch, 'missing.json')]).status).toBe(1);
    expect(checks('check_vitest suites "$1" 0 2', [report]).status).toBe(1);
  });
});

describe('check-package.js', () => {
  /** A stand-in package whose functions return NaN everywhere. */
  const pkg = join(scratch, 'nan-package');
  const stub = `
const nan = (n) => new Float32Array(n).fill(NaN);
const C = (shape) => shape[1];
const count = (shape) => shape.reduce((a, b) => a * b, 1);
exports.backendInfo = () => ({ backend: 'js', isa: 'js', threads: 1 });
exports.forwardTrain = (x, shape) => ({ y: nan(count(shape)), saveMean: nan(C(shape)), saveInvStd: nan(C(shape)) });
exports.forwardInference = (x, shape) => nan(count(shape));
exports.backward = (dy, x, shape) => ({ dx: nan(count(shape)), dgamma: nan(C(shape)), dbeta: nan(C(shape)) });`;
  mkdirSync(pkg);
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'batchnorm', main: 'index.js' }));
  writeFileSync(join(pkg, 'index.js'), stub);

  test('a NaN error is reported as "NaN", so that the scripts\' maxError check fails', () => {
    const run = spawnSync(process.execPath, [join(root, 'scripts', 'check-package.js'), pkg], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const report = run.stdout.trim();
    expect(JSON.parse(report).maxError).toBe('NaN');
    const r = checks(`check_json "the public API is correct" "$1" 'r.maxError <= 1e-5'`, [report]);
    expect(r).toMatchObject({ status: 1, stdout: expect.stringContaining('FAIL the public API is correct') });
  });
});
