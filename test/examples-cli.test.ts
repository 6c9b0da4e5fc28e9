/**
 * The examples' command lines (examples/command-line.ts, also `npm run bench:tfjs`'s): a flag
 * they do not take, or a value out of range, is answered with one line of why, the usage and
 * exit status 2, never a stack trace, and before any work starts; --help prints the usage.
 */
import { execFileSync, spawnSync } from 'child_process';
import { existsSync } from 'fs';
import { createRequire } from 'module';
import { join } from 'path';
import { beforeAll, describe, expect, test } from 'vitest';

import { integerFlag, listFlag, UsageError } from '../examples/command-line';
import { packageRoot } from '../lib/loader';

const require = createRequire(import.meta.url);
const root = packageRoot();

describe('listFlag', () => {
  test('each allowed value once, in the order given', () => {
    expect(listFlag('cpu,wasm,cpu', ['wasm', 'cpu'], 'backends', 'usage')).toEqual(['cpu', 'wasm']);
  });
  test('an unknown value is a UsageError naming it', () => {
    expect(() => listFlag('cpu,webgl', ['wasm', 'cpu'], 'backends', 'usage')).toThrow(new UsageError('--backends: unknown "webgl"', 'usage'));
  });
});

describe('integerFlag', () => {
  test.each([
    ['2', 2, 4, 2],
    ['4', 2, 4, 4],
    ['12', 1, Infinity, 12],
  ])('%j in [%d, %d] is %d', (value, min, max, want) => {
    expect(integerFlag(value, 'n', min, 'usage', max)).toBe(want);
  });

  test.each([
    ['5', 2, 4, /--n takes an integer from 2 to 4, not "5"/],
    ['0', 1, Infinity, /--n takes an integer >= 1, not "0"/],
    ['', 0, Infinity, /not ""/],
    ['1.5', 1, Infinity, /not "1.5"/],
    ['abc', 1, Infinity, /not "abc"/],
  ])('%j in [%d, %d] is a UsageError', (value, min, max, message) => {
    expect(() => integerFlag(value, 'n', min, 'usage', max)).toThrow(UsageError);
    expect(() => integerFlag(value, 'n', min, 'usage', max)).toThrow(message);
  });
});

describe('the examples with a bad command line', () => {
  const examples = join(root, 'dist-examples');
  beforeAll(() => {
    // What `npm run example:*` compiles first.
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.examples.json')], { cwd: root });
  }, 120_000);

  const commands: Record<string, () => string> = {
    'example:train': () => join(examples, 'train-mnist.js'),
    'example:data-parallel': () => join(examples, 'train-mnist-parallel.js'),
    'example:tfjs': () => join(examples, 'train-tfjs.js'),
    'bench:tfjs': () => {
      const file = join(root, 'dist-bench', 'bench', 'tfjs.js');
      if (!existsSync(file)) throw new Error('dist-bench/ is missing: run `npm run build` first');
      return file;
    },
  };

  test.each([
    ['example:train', ['--bogus'], "Unknown option '--bogus'"],
    ['example:train', ['--epochs=1'], "Unknown option '--epochs'"],
    ['example:train', ['positional'], "Unexpected argument 'positional'"],
    ['example:data-parallel', ['--bogus'], "Unknown option '--bogus'"],
    ['example:data-parallel', ['--processes=5'], '--processes takes an integer from 2 to 4, not "5"'],
    ['example:data-parallel', ['--epochs=0'], '--epochs takes an integer >= 1, not "0"'],
    ['example:data-parallel', ['--replica=0'], '--replica is set by the example on the processes it starts'],
    ['example:tfjs', ['--bogus'], "Unknown option '--bogus'"],
    ['example:tfjs', ['--backends=gpu'], '--backends: unknown "gpu"'],
    ['example:tfjs', ['--cpu-steps=1'], '--cpu-steps takes an integer >= 2, not "1"'],
    ['bench:tfjs', ['--cases=all'], '--cases: unknown "all"'],
  ])('%s %j: one line of why, the usage, exit status 2', (name, args, why) => {
    const r = spawnSync(process.execPath, [commands[name]!(), ...args], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    const [first, second] = r.stderr.split('\n');
    expect(first!.startsWith(`${name}: ${why}`), first).toBe(true);
    expect(second).toMatch(new RegExp(`^npm run ${name} `));
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
  });

  test.each(['example:train', 'example:data-parallel', 'example:tfjs'])('%s --help prints the usage and exits 0', (name) => {
    const r = spawnSync(process.execPath, [commands[name]!(), '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^npm run ${name} `));
  });
});
