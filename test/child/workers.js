'use strict';
// Worker threads and the addon's per-environment state. Each round starts 4 workers at once;
// every worker loads the package, computes sync and async results that the main thread checks
// bit for bit, then queues async calls and is terminated while they are still in flight. After
// the rounds the main thread computes again, and exits normally. Prints {"rounds": n}.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const { join } = require('path');

const bn = require(join(__dirname, '..', '..'));
const ROUNDS = Number(process.argv[2] || 3);
const WORKERS = 4;
const shape = [8, 6, 40, 40];
const size = 8 * 6 * 40 * 40;

function data(seed) {
  const x = new Float32Array(size);
  for (let i = 0; i < size; i++) x[i] = Math.sin(i * 0.37 + seed) * (1 + seed) + seed;
  return x;
}

function bits(a) {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

function compute(seed) {
  const x = data(seed);
  const f = bn.forwardTrain(x, shape);
  const b = bn.backward(data(seed + 0.5), x, shape, { saveMean: f.saveMean, saveInvStd: f.saveInvStd });
  return [f.y, f.saveMean, f.saveInvStd, b.dx, b.dgamma, b.dbeta].map(bits);
}

async function computeAsync(seed) {
  const x = data(seed);
  const f = await bn.forwardTrainAsync(x, shape);
  const b = await bn.backwardAsync(data(seed + 0.5), x, shape, { saveMean: f.saveMean, saveInvStd: f.saveInvStd });
  return [f.y, f.saveMean, f.saveInvStd, b.dx, b.dgamma, b.dbeta].map(bits);
}

async function workerMain() {
  const { seed } = workerData;
  const backend = bn.backendInfo().backend;
  parentPort.postMessage({ backend, sync: compute(seed), async: await computeAsync(seed) });
  // Large enough (8 MB) that the calls are still running when the termination lands.
  const big = new Float32Array(1 << 21).fill(seed);
  for (let i = 0; i < 8; i++) {
    bn.forwardTrainAsync(big, [64, 2, 1 << 14]);
    bn.forwardInferenceAsync(big, [64, 2, 1 << 14], { runningMean: new Float32Array(2), runningVar: new Float32Array(2).fill(1) });
  }
  parentPort.postMessage({ inFlight: true });
}

function round(r) {
  return new Promise((resolve, reject) => {
    let exited = 0;
    for (let w = 0; w < WORKERS; w++) {
      const seed = r * WORKERS + w;
      const expected = JSON.stringify(compute(seed));
      const worker = new Worker(__filename, { workerData: { seed } });
      worker.on('message', (m) => {
        if (m.inFlight) {
          worker.terminate();
        } else if (m.backend !== bn.backendInfo().backend) {
          reject(new Error(`worker ${seed} runs backend ${m.backend}`));
        } else if (JSON.stringify(m.sync) !== expected || JSON.stringify(m.async) !== expected) {
          reject(new Error(`worker ${seed} computed different bits`));
        }
      });
      worker.on('error', reject);
      worker.on('exit', () => ++exited === WORKERS && resolve());
    }
  });
}

async function main() {
  for (let r = 0; r < ROUNDS; r++) await round(r);
  compute(0); // the main environment still works after its workers' teardown
  console.log(JSON.stringify({ rounds: ROUNDS }));
}

if (isMainThread) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  workerMain();
}
