'use strict';
// Worker groups (lib/collective/worker-group.ts) with real worker threads. Usage:
//   node collective-workers.js stress <rounds>   sizes 1 to 8; the main thread is rank 0 (async,
//                                                 its event loop must keep ticking), workers
//                                                 alternate sync and async; lengths and values
//                                                 vary by round; every replica checks its sums
//                                                 against the rank-order sum and all must agree
//   node collective-workers.js fails <how>       3 replicas; rank 2 `throws` mid-step, `exits`
//                                                 (the main thread then aborts the group), or
//                                                 `never` joins; the survivors report their errors
//   node collective-workers.js mismatch          ranks send different lengths
//   node collective-workers.js layer             BatchNorm layers in 3 workers (sync methods),
//                                                 against one layer on the whole batch
// Prints one JSON line.
const { isMainThread, parentPort, workerData } = require('worker_threads');
const { createHash } = require('crypto');
const { join } = require('path');

const bn = require(join(__dirname, '..', '..'));
const { startTask } = require('./worker-task');

/** Round i's data of `rank`: awkward magnitudes, signed zeros and a NaN now and then. */
function contribution(i, rank) {
  const n = 1 + ((i * 7919 + 13) % 700);
  const d = new Float64Array(n);
  for (let j = 0; j < n; j++) d[j] = Math.sin(i * 31 + j * 7 + rank * 1000) * 10 ** ((j % 9) - 4);
  if (i % 17 === 0) d[n - 1] = rank === 1 ? NaN : -0;
  return d;
}

/** The rank-order sum every replica must get, bit for bit. */
function expected(i, size) {
  const sum = contribution(i, 0);
  for (let k = 1; k < size; k++) {
    const d = contribution(i, k);
    for (let j = 0; j < sum.length; j++) sum[j] += d[j];
  }
  return sum;
}

const sameBits = (a, b) => Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

/** Runs `rounds` rounds as one replica; resolves to its digest and whether every sum was right. */
async function replicaRounds(collective, rounds) {
  const hash = createHash('sha256');
  let wrong = 0;
  for (let i = 0; i < rounds; i++) {
    const data = contribution(i, collective.rank);
    await collective.allReduceSum(data);
    if (!sameBits(data, expected(i, collective.size))) wrong++;
    hash.update(Buffer.from(data.buffer));
  }
  return { digest: hash.digest('hex'), wrong };
}

/** Starts a worker of this script running `task` with `data` (worker-task.js). */
const worker = (task, data) => startTask(__filename, task, data);

const describeError = (e) => ({ code: e.code, message: e.message });

async function stress(rounds) {
  const results = [];
  for (const size of [1, 2, 3, 5, 8]) {
    const group = bn.createWorkerGroup(size, { capacity: 700, timeoutMs: 20000 });
    const main = bn.joinWorkerGroup(group, 0, { async: true });
    let ticks = 0;
    const ticking = setInterval(() => ticks++, 1);
    const started = Date.now();
    const others = Array.from({ length: size - 1 }, (_, k) => worker('rounds', { group, rank: k + 1, rounds, async: k % 2 === 1 }));
    const mine = await replicaRounds(main, rounds);
    const theirs = await Promise.all(others);
    clearInterval(ticking);
    const all = [mine, ...theirs];
    results.push({
      size,
      agree: all.every((r) => r.digest === mine.digest),
      wrong: all.reduce((n, r) => n + (r.wrong ?? rounds), 0),
      errors: theirs.filter((r) => r.workerError).map((r) => r.workerError),
      ticksPerSecond: (1000 * ticks) / Math.max(1, Date.now() - started),
    });
  }
  return results;
}

async function fails(how) {
  const group = bn.createWorkerGroup(3, { timeoutMs: how === 'exits' ? 60000 : 800 });
  const survivors = [0, 1].map((rank) => worker('rounds', { group, rank, rounds: 20, catchErrors: true }));
  if (how !== 'never') {
    await worker('rounds', { group, rank: 2, rounds: 20, failAt: 5, how });
    if (how === 'exits') bn.abortWorkerGroup(group); // what a main thread does on a worker's 'exit' event
  }
  const started = Date.now();
  const outcomes = await Promise.all(survivors);
  return { seconds: (Date.now() - started) / 1000, outcomes: outcomes.map((o) => o.error ?? o.workerError ?? 'no error') };
}

async function mismatch() {
  const group = bn.createWorkerGroup(2);
  const other = worker('mismatch', { group, rank: 1 });
  const mine = bn.joinWorkerGroup(group, 0);
  let error;
  try {
    mine.allReduceSum(new Float64Array(3));
  } catch (e) {
    error = describeError(e);
  }
  return { errors: [error, (await other).error] };
}

/** Layers on shards of one batch in 3 workers (one shard empty), against one layer on all of it. */
async function layer() {
  const shape = [12, 4, 6, 6];
  const rows = [5, 0, 7];
  const size = 12 * 4 * 36;
  const x = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37) * 3 + 1);
  const dy = Float32Array.from({ length: size }, (_, i) => Math.cos(i * 0.11));
  const single = new bn.BatchNorm(4);
  const y = single.forward(x, shape);
  const dx = single.backward(dy);
  const group = bn.createWorkerGroup(3);
  const perRow = size / 12;
  let at = 0;
  const replies = await Promise.all(rows.map((n, rank) => {
    const range = [at * perRow, (at += n) * perRow];
    return worker('layer', { group, rank, shape: [n, 4, 6, 6], x: x.slice(...range), dy: dy.slice(...range), range });
  }));
  const maxError = (got, want, range) => {
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[range[0] + i]));
    return worst;
  };
  const gradBetaSum = replies.reduce((s, r) => s.map((v, c) => v + r.gradBeta[c]), [0, 0, 0, 0]);
  return {
    errors: replies.map((r) => r.workerError).filter(Boolean),
    yError: Math.max(...replies.map((r) => maxError(r.y, y, r.range))),
    dxError: Math.max(...replies.map((r) => maxError(r.dx, dx, r.range))),
    runningSame: replies.every((r) => sameBits(r.runningVar, replies[0].runningVar) && sameBits(r.runningMean, replies[0].runningMean)),
    runningVarError: Math.max(...replies[0].runningVar.map((v, c) => Math.abs(v - single.runningVar[c]))),
    gradBetaError: Math.max(...gradBetaSum.map((v, c) => Math.abs(v - single.gradBeta[c]))),
  };
}

// ---- worker side ----

async function workerMain() {
  const { task, group, rank } = workerData;
  if (task === 'rounds') {
    const collective = bn.joinWorkerGroup(group, rank, { async: Boolean(workerData.async) });
    if (workerData.failAt !== undefined) {
      await replicaRounds(collective, workerData.failAt);
      if (workerData.how === 'throws') throw new Error('a replica failed mid-step');
      process.exit(1); // 'exits': the worker ends without a word
    }
    try {
      parentPort.postMessage(await replicaRounds(collective, workerData.rounds));
    } catch (e) {
      if (!workerData.catchErrors) throw e;
      parentPort.postMessage({ error: describeError(e) });
    }
  } else if (task === 'mismatch') {
    try {
      bn.joinWorkerGroup(group, rank).allReduceSum(new Float64Array(4));
    } catch (e) {
      parentPort.postMessage({ error: describeError(e) });
    }
  } else if (task === 'layer') {
    bn.setNumThreads(1);
    const layer = new bn.BatchNorm(4, { collective: bn.joinWorkerGroup(group, rank) });
    const y = layer.forward(workerData.x, workerData.shape);
    const dx = layer.backward(workerData.dy);
    const { runningMean, runningVar, gradBeta } = layer;
    parentPort.postMessage({ y, dx, runningMean, runningVar, gradBeta, range: workerData.range });
  }
}

if (isMainThread) {
  const [mode, arg] = process.argv.slice(2);
  const run = { stress: () => stress(Number(arg || 200)), fails: () => fails(arg), mismatch, layer }[mode];
  run()
    .then((result) => {
      console.log(JSON.stringify(result));
      process.exit(0); // workers blocked in Atomics.wait do not hold the process
    })
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
} else {
  workerMain();
}
