/**
 * BATCHNORM_BINARY (lib/loader.ts): loads the named .node file instead of the one node-gyp-build
 * finds; how `npm run test:asan` points the package at its sanitizer build. Child processes, each
 * loading the built package (dist/) with the variable set.
 */
import { execFileSync } from 'child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { afterAll, expect, test } from 'vitest';

import { packageRoot } from '../lib/loader';

const root = packageRoot();
const dir = mkdtempSync(join(tmpdir(), 'batchnorm-binary-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** backendInfo() of a fresh process, and whether it loaded `binary`. */
function load(env: Record<string, string>, binary: string) {
  const script = `const info = require(${JSON.stringify(root)}).backendInfo();
    console.log(JSON.stringify({ ...info, loaded: ${JSON.stringify(binary)} in require.cache }));`;
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BATCHNORM_')));
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...clean, ...env }, encoding: 'utf8', stdio: 'pipe' }));
}

test('loads the named binary', () => {
  const copy = join(dir, 'copy.node');
  copyFileSync(join(root, 'build', 'Release', 'batchnorm.node'), copy);
  expect(load({ BATCHNORM_BINARY: copy }, copy)).toMatchObject({ backend: 'native', loaded: true });
  expect(load({}, copy)).toMatchObject({ backend: 'native', loaded: false });
});

test('a binary that does not load falls back to JS, or fails with BATCHNORM_BACKEND=native', () => {
  const missing = join(dir, 'missing.node');
  expect(load({ BATCHNORM_BINARY: missing }, missing)).toMatchObject({ backend: 'js', fallbackReason: expect.stringContaining('missing.node') });
  expect(() => load({ BATCHNORM_BINARY: missing, BATCHNORM_BACKEND: 'native' }, missing)).toThrow(/ERR_BATCHNORM_NATIVE_UNAVAILABLE|BATCHNORM_BACKEND=native/);
});
