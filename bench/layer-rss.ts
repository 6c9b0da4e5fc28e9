/**
 * `npm run bench:rss`: does a training loop over a `BatchNorm` layer hold its memory flat?
 * Runs layer steps (forward, then backward) on [8, 64, 224, 224] without and with
 * `reuseOutputs`, each mode in a process of its own (so one mode's heap does not hide or inflate
 * the other's), and prints the resident set size after the warm-up and at the end, and the
 * highest over the first and the second half of the steps. The target (issue 11): flat, with
 * and without reuse: the second half peaks no higher than the first (within 10%). The garbage
 * collector runs when it would; nothing forces it, so how many dead outputs await it varies,
 * and malloc keeps its high-water mark for reuse (lib/outputs.ts): the resident set can step up
 * to a plateau a few hundred steps in (over 3,000 steps on [8, 64, 224, 224] it stayed on the
 * plateau it reached at step 125), where a leak keeps growing.
 */
import { spawnSync } from 'child_process';
import { parseArgs } from 'util';

import { backendInfo, BatchNorm } from '../lib/index';

const USAGE = `usage: npm run bench:rss -- [--steps 1000] [--warmup 20] [--shape 8x64x224x224]`;

/** The second half of the steps may peak this much above the first half and still count as flat. */
const FLAT_GROWTH = 0.1;

interface ModeResult {
  mode: string;
  warmupRss: number;
  endRss: number;
  firstHalfPeak: number;
  secondHalfPeak: number;
  msPerStep: number;
}

/** One mode, in this process: the steps, with the RSS after each. */
function runMode(reuseOutputs: boolean, shape: number[], steps: number, warmup: number): ModeResult {
  const n = shape.reduce((p, d) => p * d, 1);
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const dy = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
  const layer = new BatchNorm(shape[1], { reuseOutputs });
  const step = () => {
    layer.forward(x, shape);
    layer.backward(dy);
  };
  for (let k = 0; k < warmup; k++) step();
  const warmupRss = process.memoryUsage.rss();
  const rss: number[] = [];
  const start = performance.now();
  for (let k = 0; k < steps; k++) {
    step();
    rss.push(process.memoryUsage.rss());
  }
  const half = Math.max(1, Math.floor(steps / 2));
  return {
    mode: reuseOutputs ? 'reuseOutputs: true' : 'no reuse',
    warmupRss,
    endRss: rss[rss.length - 1],
    firstHalfPeak: Math.max(...rss.slice(0, half)),
    secondHalfPeak: Math.max(...rss.slice(half)),
    msPerStep: (performance.now() - start) / steps,
  };
}

const mb = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MB`;

function main() {
  const { values } = parseArgs({
    options: {
      steps: { type: 'string', default: '1000' },
      warmup: { type: 'string', default: '20' },
      shape: { type: 'string', default: '8x64x224x224' },
      // Internal: the child process's one mode.
      mode: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return console.log(USAGE);
  const steps = Number(values.steps);
  const warmup = Number(values.warmup);
  const shape = values.shape.split('x').map(Number);
  // Two steps at least: with one, the second half has no step and read as flat.
  if (![steps, warmup, ...shape].every((v) => Number.isInteger(v) && v >= 1) || steps < 2 || shape.length < 2) {
    console.error(`bench:rss: --steps takes an integer >= 2, --warmup and the dimensions of --shape positive integers\n${USAGE}`);
    process.exit(2);
  }
  if (values.mode) {
    console.log(JSON.stringify(runMode(values.mode === 'reuse', shape, steps, warmup)));
    return;
  }
  const info = backendInfo();
  console.log(`${steps} layer steps on [${shape.join(', ')}] after ${warmup} warm-up steps; ${info.backend} backend (${info.isa}, ${info.threads} threads)`);
  let allFlat = true;
  for (const mode of ['no-reuse', 'reuse']) {
    const child = spawnSync(process.execPath, [__filename, `--mode=${mode}`, `--steps=${steps}`, `--warmup=${warmup}`, `--shape=${values.shape}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 20,
    });
    if (child.status !== 0) throw new Error(`the ${mode} run failed (${child.signal ?? `exit status ${child.status}`})`);
    const r = JSON.parse(child.stdout) as ModeResult;
    const flat = r.secondHalfPeak <= r.firstHalfPeak * (1 + FLAT_GROWTH);
    allFlat &&= flat;
    console.log(
      `${r.mode}: RSS ${mb(r.warmupRss)} after warm-up, ${mb(r.endRss)} at the end; peak ${mb(r.firstHalfPeak)} over the first half of the steps, ` +
        `${mb(r.secondHalfPeak)} over the second: ${flat ? 'flat' : 'GROWING'} (${r.msPerStep.toFixed(1)} ms per step)`,
    );
  }
  console.log(`target (RSS flat with and without reuse, within ${FLAT_GROWTH * 100}%): ${allFlat ? 'met' : 'MISSED'}`);
}

main();
