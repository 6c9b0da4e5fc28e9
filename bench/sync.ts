/**
 * `npm run bench:sync`: what synchronizing a BatchNorm layer across worker threads costs per
 * training step (SPEC section 8). A batch is split across `--workers` worker threads (each
 * with `--threads` native threads); every worker runs a layer step (forward + backward) on its
 * shard with a plain layer and with two layers synchronized through a worker group: one given
 * the group's collective, which synchronizes inside the native kernels (lib/collective/
 * kernel-exchange.ts) where the native backend runs, and one given a wrapper of it, which takes
 * the split path (batchMoments, allReduceSum, forwardTrain with the moments; the same for
 * backward) as any other collective does. The order of the three rotates from step to step.
 * All workers start each step together (a barrier outside the timed part), and a step takes as
 * long as its slowest worker. Prints the median step times and the overhead of synchronization
 * (target: under 10% on [32, 64, 56, 56] with 2 workers).
 */
import { parseArgs } from 'util';
import { isMainThread, parentPort, Worker, workerData } from 'worker_threads';

import { backendInfo, BatchNorm, createWorkerGroup, joinWorkerGroup, setNumThreads, type WorkerGroup } from '../lib/index';
import { machine } from './machine';
import { summarize, type Summary } from './timing';
import { noise } from './workload';

const USAGE = `npm run bench:sync -- [flags]
  --shape=32x64x56x56   the whole batch, N x C x ... (NCHW; split along N)
  --workers=2           worker threads, one replica each
  --threads=1           native threads per worker
  --steps=60            timed steps per variant (after 3 untimed ones)
  --json                print the results as JSON`;

const WARMUP_STEPS = 3;

const VARIANTS = ['plain', 'kernels', 'split'] as const;
type VariantName = (typeof VARIANTS)[number];

/** Per timed step: forward and backward ms of each variant, and the split step's ms inside allReduceSum. */
type WorkerTimes = Record<VariantName, [number, number][]> & { collective: number[] };

interface Job {
  group: WorkerGroup;
  rank: number;
  shape: number[];
  threads: number;
  steps: number;
}

/** A worker: both layers on its shard, step after step, each step started with the others. */
function replica({ group, rank, shape, threads, steps }: Job): WorkerTimes {
  setNumThreads(threads);
  const collective = joinWorkerGroup(group, rank);
  let inCollective = 0;
  const timed = {
    rank,
    size: collective.size,
    allReduceSum(data: Float64Array) {
      const start = performance.now();
      collective.allReduceSum(data);
      inCollective += performance.now() - start;
    },
  };
  const n = shape.reduce((p, d) => p * d, 1);
  const x = noise(n, 1 + rank, 0.5, 6);
  const dy = noise(n, 100 + rank, 0, 2);
  const C = shape[1]!;
  const layers = { plain: new BatchNorm(C), kernels: new BatchNorm(C, { collective }), split: new BatchNorm(C, { collective: timed }) };
  const barrier = new Float64Array(1);
  const times: WorkerTimes = { plain: [], kernels: [], split: [], collective: [] };
  for (let i = 0; i < WARMUP_STEPS + steps; i++) {
    for (let v = 0; v < VARIANTS.length; v++) {
      const name = VARIANTS[(i + v) % VARIANTS.length]!;
      collective.allReduceSum(barrier);
      inCollective = 0;
      const start = performance.now();
      layers[name].forward(x, shape);
      const forwarded = performance.now();
      layers[name].backward(dy);
      if (i < WARMUP_STEPS) continue;
      times[name].push([forwarded - start, performance.now() - forwarded]);
      if (name === 'split') times.collective.push(inCollective);
    }
  }
  return times;
}

/** Rows of the batch for each of `workers` replicas (the first ones take the remainder). */
function split(rows: number, workers: number): number[] {
  return Array.from({ length: workers }, (_, k) => Math.floor(rows / workers) + (k < rows % workers ? 1 : 0));
}

interface Variant {
  step: Summary;
  forward: Summary;
  backward: Summary;
}

/** A step lasts as long as its slowest worker: per step, the max over workers. */
function variant(all: WorkerTimes[], name: VariantName): Variant {
  const steps = all[0]![name].length;
  const slowest = (f: (t: [number, number]) => number) => Array.from({ length: steps }, (_, i) => Math.max(...all.map((w) => f(w[name][i]!))));
  return { step: summarize(slowest(([f, b]) => f + b)), forward: summarize(slowest(([f]) => f)), backward: summarize(slowest(([, b]) => b)) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      shape: { type: 'string', default: '32x64x56x56' },
      workers: { type: 'string', default: '2' },
      threads: { type: 'string', default: '1' },
      steps: { type: 'string', default: '60' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return console.log(USAGE);
  const shape = values.shape.split('x').map(Number);
  const [workers, threads, steps] = [values.workers, values.threads, values.steps].map(Number) as [number, number, number];
  if (shape.length < 2 || !shape.every((d) => Number.isInteger(d) && d > 0) || ![workers, threads, steps].every((v) => Number.isInteger(v) && v > 0)) {
    throw new Error(`expected positive integers\n${USAGE}`);
  }
  const group = createWorkerGroup(workers, { capacity: Math.max(65536, workers * (1 + 2 * shape[1]!)) });
  const shards = split(shape[0]!, workers).map((rows) => [rows, ...shape.slice(1)]);
  const all = await Promise.all(
    shards.map(
      (shard, rank) =>
        new Promise<WorkerTimes>((resolve, reject) => {
          const job: Job = { group, rank, shape: shard, threads, steps };
          const worker = new Worker(__filename, { workerData: job });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  const [plain, kernels, splitStep] = VARIANTS.map((name) => variant(all, name)) as [Variant, Variant, Variant];
  const overhead = kernels.step.median / plain.step.median - 1;
  const splitOverhead = splitStep.step.median / plain.step.median - 1;
  // Time in allReduceSum: the collective itself plus waiting for the slowest replica to arrive.
  const collective = summarize(all.flatMap((w) => w.collective));
  const info = backendInfo();
  const inKernels = info.backend === 'native';
  const ran = { ...machine(), backend: info.backend, isa: info.isa };
  const result = { machine: ran, shape, workers, threadsPerWorker: threads, shards, steps, inKernels, plain, kernels, split: splitStep, collective, overhead, splitOverhead, target: 0.1, met: overhead < 0.1 };
  if (values.json) return console.log(JSON.stringify(result, null, 2));
  const ms = (s: Summary) => `${s.median.toFixed(2)} ms (p10 ${s.p10.toFixed(2)}, p90 ${s.p90.toFixed(2)})`;
  console.log(`${ran.cpu} (${ran.cores} cores), ${info.backend} ${info.isa}`);
  console.log(`BatchNorm layer step on [${shape.join(', ')}] split into ${shards.map((s) => `[${s.join(', ')}]`).join(' + ')}, ${threads} native thread(s) per worker, ${steps} steps each, median of the slowest worker:`);
  const rows = [
    ['unsynchronized', plain],
    [inKernels ? 'synchronized in the kernels' : 'synchronized (JS backend: split)', kernels],
    ['synchronized, split', splitStep],
  ] as const;
  for (const [name, v] of rows) {
    console.log(`  ${name.padEnd(32)} step ${ms(v.step)}; forward ${v.forward.median.toFixed(2)} ms, backward ${v.backward.median.toFixed(2)} ms`);
  }
  console.log(`  of the split step, inside allReduceSum (2 calls; waiting for the other replicas included): ${collective.median.toFixed(2)} ms median per worker`);
  console.log(`  overhead of the split step: ${(100 * splitOverhead).toFixed(1)}%`);
  console.log(`  overhead of synchronization (a layer given the worker group's collective): ${(100 * overhead).toFixed(1)}% (target < 10%: ${result.met ? 'met' : 'MISSED'})`);
}

if (isMainThread) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
} else {
  parentPort!.postMessage(replica(workerData as Job));
}
