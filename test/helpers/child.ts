/**
 * Runs a script of test/child/ in a fresh Node process: for checks that could crash the process
 * (fuzzing, worker teardown) or that need their own flags (--expose-gc). Children load the built
 * package (dist/) and inherit this process's environment (BATCHNORM_BACKEND, and under
 * `npm run test:asan` the sanitizer runtime and BATCHNORM_BINARY).
 */
import { spawnSync } from 'child_process';
import { existsSync } from 'fs';
import { join } from 'path';
import { expect } from 'vitest';

import { packageRoot } from '../../lib/loader';

export interface ChildOptions {
  args?: string[];
  nodeFlags?: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Whether this process runs on glibc (whose malloc the addon tunes). */
export const onGlibc = Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);

/** The child's environment: ours without any variable this package reads (or that turns its tuning off). */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('BATCHNORM_') && !k.startsWith('MALLOC_') && !['OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT', 'GLIBC_TUNABLES'].includes(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

export function runChild(script: string, opts: ChildOptions = {}): ChildResult {
  const root = packageRoot();
  if (!existsSync(join(root, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const r = spawnSync(process.execPath, [...(opts.nodeFlags ?? []), join(root, 'test', 'child', script), ...(opts.args ?? [])], {
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 64 << 20,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Asserts a normal exit (status 0, no signal) and returns the JSON the child printed last. */
export function cleanExit<T = unknown>(r: ChildResult): T {
  const tail = (s: string) => s.split('\n').slice(-40).join('\n');
  expect({ status: r.status, signal: r.signal }, `child stdout:\n${tail(r.stdout)}\nchild stderr:\n${tail(r.stderr)}`).toEqual({
    status: 0,
    signal: null,
  });
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}
