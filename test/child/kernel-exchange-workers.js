'use strict';
// BatchNorm layers synchronized inside the native kernels (lib/collective/kernel-exchange.ts),
// with real worker threads. Usage:
//   node kernel-exchange-workers.js compare   per case, layers on a batch's shards train 2 steps
//                                             twice: synchronized in the kernels, and split (a
//                                             group whose maxChannels is below C); reports
//                                             whether every output is the same bits both ways
//                                             and on every replica, and the worst difference
//                                             from one layer on the whole batch
//   node kernel-exchange-workers.js fails <how>  3 replicas; rank 2 `never` runs the forward, or
//                                             runs it `late` (after the others gave up), or with
//                                             a layer of 3 channels to the others' 4
//                                             (`mismatch`), or the main thread `aborts` the
//                                             group while the others wait; reports the
//                                             replicas' errors and whether their running
//                                             statistics stayed
//   node kernel-exchange-workers.js tooFew     2 replicas with 1 value per channel in all: both
//                                             refuse the step alike, and the next step works
//   node kernel-exchange-workers.js jsJoin     a worker on the JavaScript backend joins a group
//                                             made here (native): it is refused
// Prints one JSON line.
const { isMainThread, parentPort, workerData } = require('worker_threads');
const { join } = require('path');

const bn = require(join(__dirname, '..', '..'));
const { startTask } = require('./worker-task');

/** A batch's values: awkward offsets per channel, so that the statistics matter. */
function batch(n, seed) {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * (1 + (i % 7)) + ((i * 13) % 5) - 2);
}

const bits = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/** Starts a worker of this script running `task` with `data` (worker-task.js). */
const worker = (task, data, env) => startTask(__filename, task, data, env);

/** The channel count of a case. */
const channelsOf = (c) => c.shape[c.axis < 0 ? c.axis + c.shape.length : c.axis];

/** Layer options of a case, with the collective; the same parameters on every replica. */
function layerOf(C, c, collective) {
  const layer = new bn.BatchNorm(C, { axis: c.axis, activation: c.activation, gammaInit: 'normal', seed: 5, collective });
  layer.beta?.set(Float32Array.from({ length: C }, (_, k) => Math.cos(k)));
  return layer;
}

/** Two training steps on one replica's shards (x, dy, residual per step); every output and the running statistics. */
async function replicaSteps(layer, steps, shape, async) {
  const out = [];
  for (const s of steps) {
    const y = async ? await layer.forwardAsync(s.x, shape, { residual: s.residual }) : layer.forward(s.x, shape, { residual: s.residual });
    const dresidual = s.residual ? new Float32Array(s.dy.length) : undefined;
    const dx = async ? await layer.backwardAsync(s.dy, { dresidual }) : layer.backward(s.dy, { dresidual });
    out.push({ y: y.slice(), dx: dx.slice(), dresidual });
  }
  return { out, runningMean: layer.runningMean, runningVar: layer.runningVar, gradGamma: layer.gradGamma, gradBeta: layer.gradBeta };
}

/** The case's shards of every step: per replica, its rows of x, dy and the residual. */
function shardsOf(c) {
  const n = c.shape.reduce((p, d) => p * d, 1);
  const perRow = n / c.shape[0];
  const steps = [0, 1].map((s) => ({ x: batch(n, s), dy: batch(n, 10 + s), residual: c.residual ? batch(n, 20 + s) : undefined }));
  let at = 0;
  return c.rows.map((rows) => {
    const [from, to] = [at * perRow, (at += rows) * perRow];
    const cut = (a) => a && a.slice(from, to);
    return { shape: [rows, ...c.shape.slice(1)], steps: steps.map((s) => ({ x: cut(s.x), dy: cut(s.dy), residual: cut(s.residual) })) };
  });
}

/** One run of a case: rank 0 in this thread (async when the case says), the others in workers. */
async function runCase(c, maxChannels) {
  const C = channelsOf(c);
  const group = bn.createWorkerGroup(c.rows.length, { maxChannels, timeoutMs: 20000 });
  const parts = shardsOf(c);
  const others = parts.slice(1).map((p, k) => worker('steps', { group, rank: k + 1, C, c, part: p, threads: c.threads[(k + 1) % c.threads.length] }));
  bn.setNumThreads(c.threads[0]);
  const mainAsync = Boolean(c.mainAsync);
  const layer = layerOf(C, c, bn.joinWorkerGroup(group, 0, { async: mainAsync }));
  const mine = await replicaSteps(layer, parts[0].steps, parts[0].shape, mainAsync);
  return [mine, ...(await Promise.all(others))];
}

/** Every array of a replica's results, flattened in a fixed order. */
const arraysOf = (r) => [...r.out.flatMap((s) => [s.y, s.dx, s.dresidual].filter(Boolean)), r.runningMean, r.runningVar, r.gradGamma, r.gradBeta];

async function compare() {
  const cases = [
    { name: 'NCHW, 2 replicas', shape: [8, 6, 40, 40], rows: [3, 5], axis: 1, threads: [1] },
    { name: 'NCHW, 4 replicas, one empty, 2 threads each', shape: [9, 5, 32, 33], rows: [4, 0, 3, 2], axis: 1, threads: [2] },
    { name: 'NCHW with ReLU and a residual, 3 replicas, main thread async', shape: [6, 7, 36, 36], rows: [2, 1, 3], axis: 1, activation: 'relu', residual: true, threads: [1, 2], mainAsync: true },
    { name: 'NHWC, 3 replicas', shape: [6, 12, 12, 8], rows: [1, 3, 2], axis: -1, threads: [1, 2] },
    { name: '[N, C] with ReLU, 2 replicas', shape: [64, 40], rows: [60, 4], axis: 1, activation: 'relu', threads: [2, 1] },
    { name: 'NCHW short runs (the rows layout), 2 replicas', shape: [16, 9, 4, 4], rows: [7, 9], axis: 1, threads: [1] },
    // More replicas than the libuv pool's 4 threads, which every thread of the process shares.
    { name: 'NCHW, 6 replicas, all on the async methods', shape: [12, 4, 32, 32], rows: [2, 2, 2, 2, 2, 2], axis: 1, threads: [1], mainAsync: true, workersAsync: true },
  ];
  const results = [];
  for (const c of cases) {
    const inKernels = await runCase(c, undefined);
    const split = await runCase(c, 1);
    const errors = [...inKernels, ...split].map((r) => r.workerError).filter(Boolean);
    if (errors.length > 0) {
      results.push({ name: c.name, errors });
      continue;
    }
    const same = inKernels.every((r, k) => arraysOf(r).every((a, i) => bits(a) === bits(arraysOf(split[k])[i])));
    const runningSame = inKernels.every((r) => bits(r.runningMean) === bits(inKernels[0].runningMean) && bits(r.runningVar) === bits(inKernels[0].runningVar));
    // One layer on the whole batch, in this thread.
    const C = channelsOf(c);
    bn.setNumThreads(1);
    const single = await replicaSteps(layerOf(C, c, undefined), shardsOf({ ...c, rows: [c.shape[0]] })[0].steps, c.shape, false);
    let worst = 0;
    single.out.forEach((s, step) => {
      for (const key of ['y', 'dx']) {
        const got = inKernels.flatMap((r) => Array.from(r.out[step][key]));
        got.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - s[key][i]) / (1 + Math.abs(s[key][i])))));
      }
    });
    const varError = Math.max(...Array.from(single.runningVar, (v, k) => Math.abs(v - inKernels[0].runningVar[k]) / (1e-6 + Math.abs(v))));
    results.push({ name: c.name, same, runningSame, worst, varError });
  }
  return results;
}

async function fails(how) {
  // `late`: short runs, where each replica publishes every channel before it waits for the first.
  const c = { shape: how === 'late' ? [6, 4, 4, 4] : [6, 4, 32, 32], rows: [2, 2, 2], axis: 1 };
  const group = bn.createWorkerGroup(3, { timeoutMs: how === 'aborts' || how === 'mismatch' ? 60000 : 500 });
  const replica = (rank, layerCase = c) => worker('survive', { group, rank, C: layerCase.shape[1], c: layerCase, part: shardsOf(layerCase)[rank], threads: 1 });
  const survivors = how === 'mismatch' ? [replica(0), replica(1), replica(2, { ...c, shape: [6, 3, 32, 32] })] : [0, 1].map((rank) => replica(rank));
  if (how === 'aborts') {
    await new Promise((resolve) => setTimeout(resolve, 300));
    bn.abortWorkerGroup(group);
  }
  const started = Date.now();
  const outcomes = await Promise.all(survivors);
  const seconds = (Date.now() - started) / 1000;
  // Rank 2 starts once the others have given up.
  if (how === 'late') outcomes.push(await replica(2));
  return { seconds, outcomes };
}

async function tooFew() {
  const c = { shape: [1, 3], rows: [1, 0], axis: 1 };
  const group = bn.createWorkerGroup(2, { timeoutMs: 20000 });
  const parts = shardsOf(c);
  return Promise.all(parts.map((part, rank) => worker('tooFew', { group, rank, C: 3, c, part, threads: 1 })));
}

async function jsJoin() {
  const group = bn.createWorkerGroup(2);
  return worker('join', { group, rank: 1 }, { ...process.env, BATCHNORM_BACKEND: 'js' });
}

// ---- worker side ----

function workerMain() {
  const { task, group, rank, C, c, part, threads } = workerData;
  if (task === 'join') {
    try {
      bn.joinWorkerGroup(group, rank);
      parentPort.postMessage({ backend: bn.backendInfo().backend, error: 'none' });
    } catch (e) {
      parentPort.postMessage({ backend: bn.backendInfo().backend, code: e.code, message: e.message });
    }
    return;
  }
  bn.setNumThreads(threads);
  const layer = layerOf(C, c, bn.joinWorkerGroup(group, rank));
  const step = part.steps[0];
  if (task === 'steps') {
    replicaSteps(layer, part.steps, part.shape, Boolean(c.workersAsync)).then((r) => parentPort.postMessage(r));
  } else if (task === 'survive') {
    const before = bits(layer.runningVar);
    try {
      layer.forward(step.x, part.shape);
      parentPort.postMessage({ error: 'none' });
    } catch (e) {
      parentPort.postMessage({ code: e.code, message: e.message, runningKept: bits(layer.runningVar) === before });
    }
  } else if (task === 'tooFew') {
    let code = 'none';
    try {
      layer.forward(step.x, part.shape);
    } catch (e) {
      code = e.code;
    }
    // The group still works: a step with 2 values per channel in all.
    const x = Float32Array.from({ length: 3 }, (_, k) => k + rank);
    layer.forward(x, [1, 3]);
    parentPort.postMessage({ code, numBatchesTracked: layer.numBatchesTracked, runningMean: Array.from(layer.runningMean) });
  }
}

if (isMainThread) {
  const [mode, arg] = process.argv.slice(2);
  const run = { compare, fails: () => fails(arg), tooFew, jsJoin }[mode];
  run()
    .then((result) => {
      console.log(JSON.stringify(result));
      process.exit(0); // workers blocked in a wait do not hold the process
    })
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
} else {
  workerMain();
}
