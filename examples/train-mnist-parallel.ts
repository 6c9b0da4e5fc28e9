/**
 * `npm run example:data-parallel [-- --processes=3 --epochs=4]`: the MNIST MLP of
 * train-mnist.ts (Dense -> BatchNorm -> ReLU -> Dense, SGD with momentum) trained
 * data-parallel in 2 to 4 child processes over Node's IPC channel, against one process on the
 * whole batch.
 *
 * Every process holds the same model (same seed) and takes its rows of each batch of 64 (22 +
 * 21 + 21 for 3 processes). Its BatchNorm layer is synchronized through the IPC collective
 * (`joinIpcGroup`), so it normalises with the statistics of all 64 rows, as the single process
 * does; after backward, the processes add up their parameter gradients through the same
 * collective (each scaled by its share of the batch), so every process takes the same SGD step
 * and the replicas stay bitwise identical. The parent serves the group (`serveIpcGroup`).
 * Writes examples/results/train-mnist-parallel.md.
 */
import { fork } from 'child_process';
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { performance } from 'perf_hooks';

import { BatchNorm, backendInfo, joinIpcGroup, serveIpcGroup, type Collective } from '../dist/index';
import { exitWithError, integerFlag, parseFlags, UsageError } from './command-line';
import { evaluate } from './evaluate';
import { Mlp, Sgd, softmaxCrossEntropy } from './mlp';
import { loadMnist, permutation, subset, type Dataset } from './mnist';
import { markdownTable } from './report';

const CONFIG = { seed: 7, testCount: 2000, width: 128, classes: 10, batchSize: 64, lr: 0.1, momentum: 0.9 };
const RESULTS = join(__dirname, '..', 'examples', 'results');

const USAGE = `npm run example:data-parallel -- [flags]
  --processes=N      replicas in child processes, 2 to 4 (default: 3)
  --epochs=N         training epochs (default: 4)`;
const FLAGS = {
  processes: { type: 'string', default: '3' },
  epochs: { type: 'string', default: '4' },
  /** Set by the parent on the replicas it forks. */
  replica: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

/** What a run reports: per-epoch mean training loss, test accuracy, its parameters. */
interface RunResult {
  epochLoss: number[];
  test: { accuracy: number; loss: number };
  seconds: number;
  parameters: number[];
}

/** Rows [start, end) of a batch of `batch` rows that replica `rank` of `size` takes. */
function shardOf(rank: number, size: number, batch: number): [number, number] {
  const base = Math.floor(batch / size);
  const extra = batch % size;
  const start = rank * base + Math.min(rank, extra);
  return [start, start + base + (rank < extra ? 1 : 0)];
}

/** Every parameter gradient of `model` (and one more number) in one array, and back. */
function gradientBuffer(model: Mlp) {
  const params = model.parameters();
  const buffer = new Float64Array(params.reduce((n, p) => n + p.grad.length, 0) + 1);
  return {
    buffer,
    pack(extra: number) {
      let at = 0;
      for (const { grad } of params) {
        buffer.set(grad, at);
        at += grad.length;
      }
      buffer[at] = extra;
    },
    unpack(): number {
      let at = 0;
      for (const { grad } of params) {
        grad.set(buffer.subarray(at, at + grad.length));
        at += grad.length;
      }
      return buffer[at]!;
    },
  };
}

/**
 * Trains `model` as replica `rank` of `size` (its rows of every batch), adding up gradients
 * and losses through `collective` when there is one. Every replica visits the same batches.
 */
async function train(model: Mlp, data: Dataset, epochs: number, rank: number, size: number, collective: Collective | null) {
  const sgd = new Sgd(CONFIG.lr, CONFIG.momentum);
  const { batchSize, classes } = CONFIG;
  const steps = Math.floor(data.count / batchSize);
  const [start, end] = shardOf(rank, size, batchSize);
  const gradients = gradientBuffer(model);
  const epochLoss: number[] = [];
  model.train(true);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = permutation(data.count, CONFIG.seed * 1000 + epoch);
    let sum = 0;
    for (let step = 0; step < steps; step++) {
      const batch = subset(data, order.subarray(step * batchSize + start, step * batchSize + end));
      const { logits, activations } = await model.forwardAsync(batch.images, batch.count);
      const { loss, grad } = softmaxCrossEntropy(logits, batch.labels, batch.count, classes);
      grad.forEach((g, i) => (grad[i] = (g * batch.count) / batchSize)); // d(mean loss over the whole batch)
      model.zeroGrad();
      await model.backwardAsync(grad, activations, batch.count);
      gradients.pack((loss * batch.count) / batchSize);
      if (collective) await collective.allReduceSum(gradients.buffer);
      sum += gradients.unpack();
      sgd.step(model.parameters());
    }
    epochLoss.push(sum / steps);
    if (rank === 0) console.log(`  ${collective ? `${size} processes` : 'one process'}: epoch ${epoch + 1}/${epochs}, mean training loss ${(sum / steps).toFixed(4)}`);
  }
  return epochLoss;
}

/** A fresh model; `collective` synchronizes its BatchNorm layer. */
const createModel = (data: Dataset, collective: Collective | null) =>
  Mlp.create(data.features, CONFIG.width, CONFIG.classes, CONFIG.seed, new BatchNorm(CONFIG.width, { collective }));

async function run(data: { train: Dataset; test: Dataset }, epochs: number, rank: number, size: number, collective: Collective | null): Promise<RunResult> {
  const model = createModel(data.train, collective);
  const started = performance.now();
  const epochLoss = await train(model, data.train, epochs, rank, size, collective);
  const seconds = (performance.now() - started) / 1000;
  const parameters = model.parameters().flatMap((p) => Array.from(p.value));
  return { epochLoss, test: evaluate(model, data.test, CONFIG.classes), seconds, parameters };
}

/** A child process: one replica. */
async function replica(rank: number, size: number, epochs: number) {
  const collective = joinIpcGroup({ rank, size });
  const result = await run(loadMnist(CONFIG.testCount, CONFIG.seed), epochs, rank, size, collective);
  process.send!({ rank, result });
  collective.close();
}

/** Forks the replicas, serves their group, and resolves with each one's result. */
function parallel(size: number, epochs: number): Promise<RunResult[]> {
  return new Promise((resolve, reject) => {
    const children = Array.from({ length: size }, (_, rank) => fork(__filename, ['--replica', String(rank), '--processes', String(size), '--epochs', String(epochs)]));
    const group = serveIpcGroup(children);
    const results: RunResult[] = [];
    let exited = 0;
    children.forEach((child, rank) => {
      child.on('message', (m: { rank?: number; result?: RunResult }) => m.result && (results[rank] = m.result));
      child.on('exit', (code) => {
        if (code !== 0) reject(new Error(`replica ${rank} exited with code ${code}`));
        if (++exited < size) return;
        group.close();
        resolve(results);
      });
    });
  });
}

async function main() {
  const values = parseFlags({ options: FLAGS }, USAGE);
  const size = integerFlag(values.processes, 'processes', 2, USAGE, 4);
  const epochs = integerFlag(values.epochs, 'epochs', 1, USAGE);
  if (values.replica !== undefined) {
    if (!process.send) throw new UsageError('--replica is set by the example on the processes it starts', USAGE);
    return replica(integerFlag(values.replica, 'replica', 0, USAGE, size - 1), size, epochs);
  }

  const data = loadMnist(CONFIG.testCount, CONFIG.seed);
  const shards = Array.from({ length: size }, (_, k) => shardOf(k, size, CONFIG.batchSize)).map(([a, b]) => b - a);
  console.log(`MNIST MLP 784-${CONFIG.width}-10, batch ${CONFIG.batchSize}, ${epochs} epochs; backend ${backendInfo().backend} (${backendInfo().isa})`);
  const single = await run(data, epochs, 0, 1, null);
  const replicas = await parallel(size, epochs);
  const same = replicas.every((r) => r.parameters.every((v, i) => Object.is(v, replicas[0]!.parameters[i])));
  const drift = replicas[0]!.parameters.reduce((m, v, i) => Math.max(m, Math.abs(v - single.parameters[i]!)), 0);
  const table = markdownTable(
    ['run', 'rows of each batch', 'test accuracy %', 'final epoch training loss', 'seconds'],
    [
      ['one process', String(CONFIG.batchSize), single.test.accuracy.toFixed(2), single.epochLoss.at(-1)!.toFixed(4), single.seconds.toFixed(1)],
      [`${size} processes, synchronized BatchNorm`, shards.join(' + '), replicas[0]!.test.accuracy.toFixed(2), replicas[0]!.epochLoss.at(-1)!.toFixed(4), replicas[0]!.seconds.toFixed(1)],
    ],
  );
  const notes =
    `The ${size} replicas' parameters are bitwise identical: ${same ? 'yes' : 'NO'}. ` +
    `Largest |parameter difference| from the one-process model after ${epochs} epochs: ${drift.toExponential(2)} ` +
    '(the same arithmetic summed in another order: float rounding, amplified by training).';
  console.log(`\n${table}\n\n${notes}`);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'train-mnist-parallel.md'), `${table}\n\n${notes}\n`);
  console.log(`\nWrote ${join(RESULTS, 'train-mnist-parallel.md')}.`);
}

main().catch((e) => exitWithError('example:data-parallel', e));
