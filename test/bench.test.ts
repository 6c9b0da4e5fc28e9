/**
 * The benchmark itself (the README's main job) on its smallest configuration: it must run,
 * check every backend's output against the native one, and write its reports. The user paths
 * (no destinations, the layer step) always run; PyTorch and oneDNN run where they are
 * installed, and their tests say so when they are skipped.
 */
import { execFileSync, spawnSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { startPeers } from '../bench/peer-backends';
import { backendInfo } from '../lib/index';
import { packageRoot } from '../lib/loader';

const root = packageRoot();
const main = join(root, 'dist-bench', 'bench', 'main.js');

interface BackendResult {
  name: string;
  status: string;
  note?: string;
  summary: { reps: number };
  gbps: number;
}
interface CellResult {
  op: string;
  reference: string;
  fractionOfTriad: number;
  speedups: Record<string, number>;
  backends: BackendResult[];
}

interface Report {
  meta: { peers: Record<string, string> };
  roofs: { dramTriad: number }[];
  cells: CellResult[];
}

function bench(args: string[]): { report: Report; dir: string } {
  if (!existsSync(main)) throw new Error('dist-bench/ is missing: run `npm run build` first');
  const dir = mkdtempSync(join(tmpdir(), 'batchnorm-bench-'));
  const out = execFileSync(process.execPath, [main, '--shapes=256x1024-nc', '--threads=1', '--json', `--out=${dir}`, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, BATCHNORM_BACKEND: '' },
  });
  return { report: JSON.parse(out), dir };
}

const result = (cell: CellResult, name: string) => cell.backends.find((b) => b.name === name);

function expectTimedAndRight(b: BackendResult | undefined) {
  expect(b, 'the backend ran').toBeDefined();
  expect(b!.status, `${b!.name}: ${b!.note ?? ''}`).toBe('ok');
  expect(b!.summary.reps).toBeGreaterThanOrEqual(3);
  expect(b!.gbps).toBeGreaterThan(0);
}

/** Every backend of the cell either ran and was right, or could not run it and says why. */
function expectRanOrSaidWhy(cell: CellResult) {
  for (const b of cell.backends) {
    if (b.status === 'skipped') expect(b.note, b.name).toBeTruthy();
    else expectTimedAndRight(b);
  }
}

/** Whether a peer library is installed, judged without the bench's own code. */
const torchInstalled = spawnSync('/usr/bin/python3', ['-c', 'import torch']).status === 0;
const onednnInstalled = spawnSync('g++', ['-E', '-x', 'c++', '-', '-o', '/dev/null'], { input: '#include <oneapi/dnnl/dnnl.hpp>\n' }).status === 0;

describe('npm run bench on one small cell, every op of a training step, every backend but tfjs', () => {
  let report: Report;
  let dir: string;
  let summary: string;
  const cell = (op: string) => report.cells.find((c) => c.op === op)!;
  beforeAll(() => {
    ({ report, dir } = bench(['--ops=forwardTrain,backward,trainStep', '--backends=native,js,torch,onednn']));
    summary = readFileSync(join(dir, 'latest.md'), 'utf8');
  }, 180_000);
  afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

  test('native and JS agree, GB/s and the roof are reported, the files are written', () => {
    expect(report.roofs[0].dramTriad).toBeGreaterThan(0);
    expect(report.cells.map((c) => c.op)).toEqual(['forwardTrain', 'backward', 'trainStep']);
    for (const c of report.cells) {
      expect(c.reference).toMatch(/^native-/);
      expect(c.fractionOfTriad).toBeGreaterThan(0);
      expect(c.speedups.js).toBeGreaterThan(0);
      expectTimedAndRight(result(c, 'js'));
      expectRanOrSaidWhy(c);
    }
    const written = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8'));
    expect(written.cells).toHaveLength(3);
    expect(readFileSync(join(dir, 'latest.svg'), 'utf8')).toContain('<svg');
    expect(summary).toContain('| forwardTrain | 256x1024-nc | 1 |');
    expect(summary).toMatch(/^CPU: .+ last-level cache \d+ MiB; our ISAs here: /m);
    // Judged, either way (a sanitizer build is slow): "met | 2 cells, ..." or "MISSED | missed in 1 of 2 cells: ...".
    expect(summary).toMatch(/\| native >= 10x the JS backend, in-cache cases, 1 thread \| (met|MISSED) \| [^|]*\b2 cells/);
  });

  test('the public calls with and without destinations and the layer step (without and with reuseOutputs) run and agree with the kernels', () => {
    for (const c of report.cells) {
      for (const path of ['native-dest', 'native-nodest']) {
        expectTimedAndRight(result(c, path));
        expect(c.speedups[path]).toBeGreaterThan(0);
      }
    }
    expect(result(cell('forwardTrain'), 'native-layer')?.status).toBe('skipped');
    expectTimedAndRight(result(cell('trainStep'), 'native-layer'));
    expectTimedAndRight(result(cell('trainStep'), 'native-layer-reuse'));
    expect(summary).toContain('## What users get');
    expect(summary).toMatch(/\| no destinations within 1\.5x of the same call with destinations \| (met|MISSED) \| [^|]*\b3 cells/);
    expect(summary).toMatch(/\| layer step with reuseOutputs within 1\.15x of forwardTrain \+ backward with destinations \| (met|MISSED) \| [^|]*\b1 cell\b/);
  });

  test('PyTorch: its allocating API, outputs on reused pages and nn.BatchNorm, checked against ours', (ctx) => {
    if (!torchInstalled) ctx.skip('skipped: /usr/bin/python3 cannot import torch (Debian: apt-get install python3-torch)');
    expect(report.meta.peers.PyTorch).toMatch(/^\d+\.\d+/);
    for (const c of report.cells) {
      expectTimedAndRight(result(c, 'torch'));
      expectTimedAndRight(result(c, 'torch-nommap'));
    }
    expect(result(cell('forwardTrain'), 'torch-layer')?.status).toBe('skipped');
    expectTimedAndRight(result(cell('trainStep'), 'torch-layer'));
    expect(summary).toMatch(/\| no destinations at least as fast as PyTorch's allocating API \| (met|MISSED) \| [^|]*\b3 cells/);
    expect(summary).toMatch(/\| layer step without reuse at least as fast as PyTorch's nn.BatchNorm step \| (met|MISSED) \| [^|]*\b1 cell\b/);
  });

  test('oneDNN: compiled on first use, every buffer preallocated, checked against ours', (ctx) => {
    if (!onednnInstalled) ctx.skip('skipped: no oneapi/dnnl/dnnl.hpp for g++ (Debian: apt-get install libdnnl-dev)');
    expect(report.meta.peers.oneDNN).toMatch(/^\d+\.\d+/);
    for (const c of report.cells) expectTimedAndRight(result(c, 'onednn'));
    expect(summary).toMatch(/\| with destinations at least as fast as the best of PyTorch and oneDNN, every cell \(within 5% is a tie\) \| (met|MISSED) \| [^|]*\b2 cells/);
  });
});

test('a peer that is not installed is skipped with one note, and why', async () => {
  const said: string[] = [];
  const peers = await startPeers({ backends: ['torch'], python: '/nonexistent/python3', nodeFlags: [] }, (m) => said.push(m));
  peers.close();
  expect(peers.backends).toEqual([]);
  expect(peers.versions.PyTorch).toMatch(/^not available: .*nonexistent/);
  expect(said).toEqual([expect.stringMatching(/^PyTorch: skipped \(.*nonexistent/)]);
});

test('--node-flags reach the process of our user paths', async () => {
  const start = async (nodeFlags: string[]) => {
    const said: string[] = [];
    const peers = await startPeers({ backends: ['native-nodest'], python: '/nonexistent/python3', nodeFlags }, (m) => said.push(m));
    peers.close();
    return { names: peers.backends.map((b) => b.name), said };
  };
  expect(await start(['--single-threaded-gc'])).toEqual({ names: ['native-nodest'], said: [] });
  const refused = await start(['--no-such-node-flag']);
  expect(refused.names).toEqual([]);
  expect(refused.said).toEqual([expect.stringMatching(/^batchnorm \(no destinations, layer\): skipped \(.*--no-such-node-flag/)]);
});

test('npm run bench:rss: both modes in processes of their own, RSS reported', () => {
  const script = join(root, 'dist-bench', 'bench', 'layer-rss.js');
  const out = execFileSync(process.execPath, [script, '--steps=10', '--warmup=2', '--shape=4x8x16x16'], { encoding: 'utf8' });
  expect(out).toMatch(/^no reuse: RSS \d+ MB after warm-up, \d+ MB at the end/m);
  expect(out).toMatch(/^reuseOutputs: true: RSS \d+ MB after warm-up, \d+ MB at the end/m);
  expect(out).toMatch(/^target \(RSS flat with and without reuse, within 10%\): (met|MISSED)$/m);
});

test('npm run bench:rss: one step has no second half to judge, and is refused', () => {
  const script = join(root, 'dist-bench', 'bench', 'layer-rss.js');
  const run = spawnSync(process.execPath, [script, '--steps=1', '--warmup=1', '--shape=4x8x16x16'], { encoding: 'utf8' });
  expect(run.status).toBe(2);
  expect(run.stderr).toMatch(/--steps takes an integer >= 2/);
  expect(run.stdout).not.toMatch(/target .*: met/);
});

test('npm run bench:sync: the three variants timed in worker threads, the kernels path on the native backend', () => {
  const script = join(root, 'dist-bench', 'bench', 'sync.js');
  const out = execFileSync(process.execPath, [script, '--shape=4x3x8x8', '--steps=3', '--json'], { encoding: 'utf8' });
  const r = JSON.parse(out) as { inKernels: boolean; shards: number[][]; overhead: number; splitOverhead: number } & Record<'plain' | 'kernels' | 'split', { step: { median: number } }>;
  expect(r.shards).toEqual([
    [2, 3, 8, 8],
    [2, 3, 8, 8],
  ]);
  expect(r.inKernels).toBe(backendInfo().backend === 'native');
  for (const name of ['plain', 'kernels', 'split'] as const) expect(r[name].step.median, name).toBeGreaterThan(0);
  expect(Number.isFinite(r.overhead) && Number.isFinite(r.splitOverhead)).toBe(true);
});
