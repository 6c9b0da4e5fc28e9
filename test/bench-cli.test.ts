/**
 * The benchmark's command line (bench/cli.ts): flags as people type them, and a bad command
 * line answered with one line of why, the usage and exit status 2, never a stack trace.
 */
import { spawnSync } from 'child_process';
import { existsSync } from 'fs';
import { join } from 'path';
import { describe, expect, test } from 'vitest';

import { parseOptions } from '../bench/cli';
import { packageRoot } from '../lib/loader';

describe('bench flags', () => {
  test('--flag value and --flag=value mean the same', () => {
    const spaced = parseOptions(['--out', '/tmp/x', '--shapes', '256x1024-nc', '--threads', '1,2', '--ops', 'backward']);
    const joined = parseOptions(['--out=/tmp/x', '--shapes=256x1024-nc', '--threads=1,2', '--ops=backward']);
    expect(spaced).toEqual(joined);
    expect(spaced).toMatchObject({ out: '/tmp/x', shapes: ['256x1024-nc'], threads: [1, 2], ops: ['backward'] });
  });

  test('--node-flags: space-separated flags of node, none by default', () => {
    expect(parseOptions([]).nodeFlags).toEqual([]);
    expect(parseOptions(['--node-flags=--single-threaded-gc  --max-semi-space-size=64']).nodeFlags).toEqual(['--single-threaded-gc', '--max-semi-space-size=64']);
  });

  test('a repeated value is run once', () => {
    const o = parseOptions(['--threads=1,1,01', '--shapes=256x1024-nc,256x1024-nc', '--ops=backward,backward', '--backends=js,js']);
    expect(o).toMatchObject({ threads: [1], shapes: ['256x1024-nc'], ops: ['backward'], backends: ['js'] });
  });

  test.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['--out'], /'--out <value>' argument missing/],
    [['--json=yes'], /'--json' does not take an argument/],
    [['positional'], /Unexpected argument 'positional'/],
    [['--ops=fwd'], /unknown op "fwd"/],
    [['--shapes=3x3'], /unknown shape "3x3"/],
    [['--threads=0'], /--threads takes positive integers/],
    [['--node-flags=single-threaded-gc'], /--node-flags takes flags of node/],
  ])('%j is refused: %s', (argv, message) => {
    expect(() => parseOptions(argv)).toThrow(message);
  });
});

describe('npm run bench with a bad command line', () => {
  const main = join(packageRoot(), 'dist-bench', 'bench', 'main.js');

  test.each([['--bogus'], ['--ops=fwd']])('%s: one line, the usage, exit status 2', (flag) => {
    if (!existsSync(main)) throw new Error('dist-bench/ is missing: run `npm run build` first');
    const r = spawnSync(process.execPath, [main, flag], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const [first, second] = r.stderr.split('\n');
    expect(first).toMatch(/^bench: /);
    expect(second).toMatch(/^usage: npm run bench/);
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
  });
});
