/**
 * Fuzzing (issue 6, item 1): child processes call every export, sync and async, thousands of
 * times with hostile arguments (test/child/fuzz-*.js). Each child must exit normally, every call
 * having returned results of the right form or thrown (rejected with) a TypeError or RangeError
 * with an ERR_BATCHNORM_ code. The public API is fuzzed on both backends, the raw addon directly.
 * BATCHNORM_FUZZ_ROUNDS and BATCHNORM_FUZZ_SEED change the length and the calls of a run.
 */
import { describe, expect, test } from 'vitest';

import { cleanExit, runChild } from './helpers/child';

const ROUNDS = process.env.BATCHNORM_FUZZ_ROUNDS ?? '10000';
const SEED = Number(process.env.BATCHNORM_FUZZ_SEED ?? 1);

interface Summary {
  calls: number;
  returned: number;
  TypeError: number;
  RangeError: number;
  codes: Record<string, number>;
  failures: number;
}

describe.each<{ name: string; script: string; env: Record<string, string>; seed: number }>([
  { name: 'the public API on the native backend', script: 'fuzz-api.js', env: {}, seed: SEED },
  { name: 'the public API on the JS backend', script: 'fuzz-api.js', env: { BATCHNORM_BACKEND: 'js' }, seed: SEED + 1 },
  { name: 'the raw addon', script: 'fuzz-binding.js', env: {}, seed: SEED + 2 },
])('fuzzing $name', ({ script, env, seed }) => {
  test('every call returns or throws a TypeError or RangeError with a code, and the process exits normally', { timeout: 600_000 }, () => {
    const run = runChild(script, { args: [ROUNDS, String(seed)], nodeFlags: ['--expose-gc'], env, timeoutMs: 590_000 });
    const summary = cleanExit<Summary>(run);
    expect(summary.failures).toBe(0);
    // The mix exercised both outcomes and most of the checks.
    expect(summary.calls).toBeGreaterThanOrEqual(2 * Number(ROUNDS));
    expect(summary.returned).toBeGreaterThan(summary.calls / 10);
    expect(summary.TypeError).toBeGreaterThan(summary.calls / 10);
    expect(summary.RangeError).toBeGreaterThan(summary.calls / 10);
    expect(Object.keys(summary.codes).length).toBeGreaterThanOrEqual(8);
  });
});
