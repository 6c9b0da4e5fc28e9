'use strict';
// Runs a fuzzer's calls and judges each outcome: a call must return (or resolve to) a result its
// `check` accepts, or throw (or reject with) a TypeError or RangeError whose code starts with
// ERR_BATCHNORM_. Async calls stay up to 8 in flight; with --expose-gc, a GC runs every 100
// rounds. Prints a JSON summary on stdout; any other outcome is described on stderr and makes
// the exit status 1.
const { random } = require('./fuzz-hostile');

const ours = (e) =>
  (e instanceof TypeError || e instanceof RangeError) && typeof e.code === 'string' && e.code.startsWith('ERR_BATCHNORM_');

function describe(e) {
  try {
    return `${e && e.constructor && e.constructor.name}: ${e && e.message} (code ${e && e.code})`;
  } catch {
    return 'an uninspectable value';
  }
}

/**
 * Runs `rounds` rounds; round i makes the calls makeCalls(r, i) returns, each
 * { label, run: () => value or Promise, check: (value) => null or a problem }.
 */
async function fuzz(rounds, seed, makeCalls) {
  const r = random(seed);
  const summary = { calls: 0, returned: 0, TypeError: 0, RangeError: 0, codes: {}, failures: 0 };
  const judge = (call, outcome) => {
    const problem = 'error' in outcome
      ? (ours(outcome.error) ? null : `threw ${describe(outcome.error)}`)
      : call.check(outcome.value);
    if (problem) {
      summary.failures++;
      if (summary.failures <= 20) console.error(`seed ${seed}, ${call.label}: ${problem}`);
    } else if ('error' in outcome) {
      summary[outcome.error instanceof RangeError ? 'RangeError' : 'TypeError']++;
      summary.codes[outcome.error.code] = (summary.codes[outcome.error.code] || 0) + 1;
    } else {
      summary.returned++;
    }
  };
  let pending = [];
  for (let i = 0; i < rounds; i++) {
    for (const call of makeCalls(r, i)) {
      summary.calls++;
      let value;
      try {
        value = call.run();
      } catch (error) {
        judge(call, { error });
        continue;
      }
      if (value instanceof Promise) pending.push(value.then((v) => judge(call, { value: v }), (error) => judge(call, { error })));
      else judge(call, { value });
    }
    if (pending.length >= 8) {
      await Promise.all(pending);
      pending = [];
    }
    if (global.gc && i % 100 === 99) global.gc();
  }
  await Promise.all(pending);
  console.log(JSON.stringify(summary));
  if (summary.failures) process.exitCode = 1;
}

module.exports = { fuzz };
