/**
 * Leaks (issue 6, item 3): 100,000 calls of each function, sync and async, with fresh and with
 * reused destinations (batchMoments and backwardSums included), 100,000 layer steps with new and with reused arrays, 200 calls with
 * huge-page outputs, plus 100,000 calls the raw addon rejects, in a child process with forced
 * garbage collection (test/child/leaks.js). RSS may grow by less than 16 MB per block and in
 * total. A planted leak of 200 bytes per call showed as 20 MB blocks and 150 MB in total.
 * BATCHNORM_LEAK_CALLS changes the calls per block.
 */
import { expect, test } from 'vitest';

import { cleanExit, runChild } from './helpers/child';

const CALLS = process.env.BATCHNORM_LEAK_CALLS ?? '100000';

interface Report {
  blocks: Array<{ name: string; calls: number; ms: number; growthMB: number }>;
  totalGrowthMB: number;
  peakMB: number;
}

test(`${CALLS} calls of each function keep RSS growth under 16 MB after a forced GC`, { timeout: 600_000 }, () => {
  const run = runChild('leaks.js', {
    args: [CALLS],
    nodeFlags: ['--expose-gc', '--min-semi-space-size=16', '--max-semi-space-size=16'],
    timeoutMs: 590_000,
  });
  const report = cleanExit<Report>(run);
  console.log(
    [...report.blocks.map((b) => `${b.name}: ${b.growthMB} MB (${b.ms} ms)`), `total: ${report.totalGrowthMB} MB, peak RSS ${report.peakMB} MB`].join('\n'),
  );
  expect(report.blocks).toHaveLength(24);
  for (const b of report.blocks) expect(b.growthMB, b.name).toBeLessThan(16);
  expect(report.totalGrowthMB).toBeLessThan(16);
});
