/**
 * A kernel call whose scratch space cannot be allocated fails with the package's
 * BatchNormRangeError and ERR_BATCHNORM_OUT_OF_MEMORY, sync and async, on both backends, as a
 * failed output allocation does (lib/kernel-errors.ts). The addon had thrown a plain RangeError
 * (sync) and a plain Error (async), the JavaScript backend a bare RangeError without a code.
 * Each backend runs in a child under an address-space limit (ulimit -v) a little above what the
 * child holds before the calls; the scratch of 20M channels needs far more.
 */
import { spawnSync } from 'child_process';
import { join } from 'path';
import { describe, expect, test } from 'vitest';

import { cleanEnv } from './helpers/child';
import { load } from '../lib/loader';

const script = join(__dirname, 'child', 'scratch-oom.js');
const C = 20_000_000;
/** Headroom above the measured address space, in KiB: far below the calls' scratch. */
const HEADROOM_KIB = 100_000;

function child(backend: string, args: string, limitKib?: number) {
  const limit = limitKib === undefined ? '' : `ulimit -v ${limitKib} && `;
  const r = spawnSync('sh', ['-c', `${limit}exec "${process.execPath}" "${script}" ${args}`], {
    env: cleanEnv({ BATCHNORM_BACKEND: backend }),
    encoding: 'utf8',
    timeout: 120_000,
  });
  expect({ status: r.status, signal: r.signal }, r.stderr).toEqual({ status: 0, signal: null });
  return r.stdout.trim();
}

const backends = load().native ? ['native', 'js'] : ['js'];

describe.skipIf(process.platform !== 'linux')('out of memory for scratch space', () => {
  test.each(backends)('%s: every call fails with BatchNormRangeError ERR_BATCHNORM_OUT_OF_MEMORY', (backend) => {
    const used = Number(child(backend, `measure ${C}`));
    const outcomes = JSON.parse(child(backend, `run ${C}`, used + HEADROOM_KIB));
    const oom = { class: 'BatchNormRangeError', code: 'ERR_BATCHNORM_OUT_OF_MEMORY' };
    expect(outcomes).toEqual({ forwardTrain: oom, forwardTrainAsync: oom, backward: oom, backwardAsync: oom });
  }, 240_000);
});
