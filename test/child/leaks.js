'use strict';
// Memory growth over many calls. Each block makes <calls> calls of one function, sync or async
// (32 in flight), with fresh or reused destinations (Float64Array ones for SPEC section 8's
// batchMoments and backwardSums); two blocks make BatchNorm layer steps
// (forward + backward), with new arrays and with `reuseOutputs`; one block makes calls whose
// new outputs are large enough for the huge-page path (fewer calls: 34 MB each); one more block
// makes calls that the raw addon rejects (its C++ error path). RSS is read after a warm-up of 20,000 calls and after the
// block, each time after forced garbage collections; total growth is from the first block's
// start to the end, once the heap has handed back what it kept of freed large outputs. Prints {"blocks": [{name, calls, ms, growthMB}], "totalGrowthMB", "peakMB"}.
// Usage: node --expose-gc --min-semi-space-size=16 --max-semi-space-size=16 leaks.js <calls>
// (a fixed young generation: V8 otherwise grows it, 11 to 35 MB of heap, on the first busy
// block, which RSS would show as a leak; the warm-up then commits all of it).
const { join } = require('path');

const bn = require(join(__dirname, '..', '..'));
const { native } = require(join(__dirname, '..', '..', 'dist', 'loader.js')).load();
const { RELEASE_AFTER_MS } = require(join(__dirname, '..', '..', 'dist', 'memory-release.js'));

const CALLS = Number(process.argv[2] || 100000);
const WARMUP = 20000;
const IN_FLIGHT = 32;
const shape = [4, 8, 32];
const n = 4 * 8 * 32;
const C = 8;

const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 2 + 1);
const dy = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
const gamma = new Float32Array(C).fill(1.5);
const stats = bn.forwardTrain(x, shape);
const running = { runningMean: stats.saveMean, runningVar: new Float32Array(C).fill(2) };
const saved = { saveMean: stats.saveMean, saveInvStd: stats.saveInvStd };

// Reused destinations: the same arrays for every call.
const out = { out: new Float32Array(n), saveMean: new Float32Array(C), saveInvStd: new Float32Array(C) };
const grads = { dx: new Float32Array(n), dgamma: new Float32Array(C), dbeta: new Float32Array(C) };
const moments = { mean: new Float64Array(C), m2: new Float64Array(C) };
const sums = { sumDy: new Float64Array(C), sumDyXmu: new Float64Array(C) };

const OPS = {
  forwardTrain: (fn, reuse) => fn(x, shape, { gamma, runningMean: new Float32Array(C), ...(reuse ? out : {}) }),
  forwardInference: (fn, reuse) => fn(x, shape, { gamma, ...running, ...(reuse ? { out: out.out } : {}) }),
  backward: (fn, reuse) => fn(dy, x, shape, { gamma, ...saved, ...(reuse ? grads : {}) }),
  // synchronized statistics (SPEC section 8): Float64Array outputs
  batchMoments: (fn, reuse) => fn(x, shape, reuse ? moments : {}),
  backwardSums: (fn, reuse) => fn(dy, x, shape, { saveMean: saved.saveMean, ...(reuse ? sums : {}) }),
};


// Layer steps: new arrays each step, and the layer's own arrays.
const layers = [false, true].map((reuseOutputs) => new bn.BatchNorm(C, { reuseOutputs }));
const layerStep = (layer) => {
  layer.forward(x, shape);
  layer.backward(dy);
};

// Outputs past lib/outputs.ts's FRESH_MAPPING_BYTES: heap blocks with huge pages advised.
const LARGE = { n: 8.5 * 2 ** 20, calls: 200, shape: [8, 17, 2 ** 16] };
const largeX = new Float32Array(LARGE.n).fill(1);
const largeRunning = { runningMean: new Float32Array(17), runningVar: new Float32Array(17).fill(1) };

function rejected() {
  try {
    native.forwardInference(x, 4, 8, 33, out.out, null, null, 1e-5, running.runningMean, running.runningVar);
  } catch {
    return;
  }
  throw new Error('the raw addon accepted a wrong geometry');
}

const BLOCKS = [
  ...Object.entries(OPS).flatMap(([name, call]) =>
    [false, true].flatMap((reuse) => [
      { name: `${name}, ${reuse ? 'reused' : 'fresh'} destinations`, run: () => call(bn[name], reuse) },
      { name: `${name}Async, ${reuse ? 'reused' : 'fresh'} destinations`, run: () => call(bn[`${name}Async`], reuse), async: true },
    ]),
  ),
  ...layers.map((layer, reuse) => ({ name: `layer step, ${reuse ? 'reuseOutputs' : 'new arrays'}`, run: () => layerStep(layer) })),
  { name: 'raw addon rejections (C++ error path)', run: rejected },
  // Its RSS is read once the heap has handed back what it kept of freed outputs: how many of them
  // it holds for reuse at one moment depends on when the collector ran (0 or 1 here).
  { name: `forwardInference, fresh ${(LARGE.n * 4) / 2 ** 20} MB outputs`, calls: LARGE.calls, released: true, run: () => bn.forwardInference(largeX, LARGE.shape, largeRunning) },
];

async function calls(block, count) {
  if (!block.async) {
    for (let i = 0; i < count; i++) block.run();
    return;
  }
  for (let i = 0; i < count; i += IN_FLIGHT) {
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count - i) }, block.run));
  }
}

/** RSS in MB after full collections, with a turn of the event loop between them. */
async function settledRss() {
  for (let i = 0; i < 3; i++) {
    global.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().rss / 2 ** 20;
}

/**
 * settledRss once the heap has handed back the memory it kept of freed large outputs:
 * RELEASE_AFTER_MS after the last one was collected (lib/memory-release.ts).
 */
async function releasedRss() {
  await settledRss();
  await new Promise((resolve) => setTimeout(resolve, RELEASE_AFTER_MS + 1500));
  return settledRss();
}

async function main() {
  if (!global.gc) throw new Error('run with --expose-gc');
  const results = [];
  let first = null;
  let peak = 0;
  for (const block of BLOCKS) {
    const count = Math.min(CALLS, block.calls ?? CALLS);
    await calls(block, Math.min(WARMUP, count));
    const before = await (block.released ? releasedRss : settledRss)();
    if (first === null) first = before;
    const started = Date.now();
    await calls(block, count);
    const ms = Date.now() - started;
    peak = Math.max(peak, process.memoryUsage().rss / 2 ** 20);
    const after = await (block.released ? releasedRss : settledRss)();
    results.push({ name: block.name, calls: count, ms, growthMB: +(after - before).toFixed(2) });
  }
  const last = await releasedRss();
  console.log(JSON.stringify({ blocks: results, totalGrowthMB: +(last - first).toFixed(2), peakMB: +peak.toFixed(1) }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
