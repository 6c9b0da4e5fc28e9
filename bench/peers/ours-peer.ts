/**
 * This package as users call it, in a process of its own, speaking the line protocol of
 * peer-process.ts: a process that holds nothing but the package, as a user's would. The paths
 * that allocate (their cost includes the garbage collector's) are measured here rather than in
 * the benchmark's own process, whose other backends (TensorFlow.js's WebAssembly memory,
 * onnxruntime, the JS backend's arrays) made its collections, and so these calls, 2-4x slower.
 *
 * Paths:
 *   dest         the public functions with every destination given (validated per call)
 *   alloc        the same without destinations (each call allocates its outputs)
 *   layer        a BatchNorm layer's training step (forward + backward), new arrays each step
 *   layer-reuse  the same with `reuseOutputs: true`
 */
import { readFileSync, writeFileSync } from 'fs';
import { createInterface } from 'readline';

import { backendInfo, backward, BatchNorm, forwardInference, forwardTrain, setNumThreads } from '../../lib/index';

interface Cell {
  threads: number;
  run(): Float32Array;
  last?: Float32Array;
}

/** x, dy (n floats each), gamma, beta, running mean, running variance (C each), as the bench wrote them. */
function inputs(file: string, n: number, C: number) {
  const bytes = readFileSync(file);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const [x, dy] = [0, 1].map((k) => all.slice(k * n, (k + 1) * n));
  const [gamma, beta, runningMean, runningVar] = [0, 1, 2, 3].map((k) => all.slice(2 * n + k * C, 2 * n + (k + 1) * C));
  return { x, dy, gamma, beta, runningMean, runningVar };
}

function setup(path: string, op: string, layout: string, threads: number, eps: number, file: string, dims: number[]): Cell {
  const [N, C, ...spatial] = dims;
  const shape = layout === 'nhwc' ? [N, ...spatial, C] : dims;
  const axis = layout === 'nhwc' ? -1 : 1;
  const n = dims.reduce((p, d) => p * d, 1);
  const i = inputs(file, n, C);
  const common = { axis, gamma: i.gamma, beta: i.beta };
  if (path === 'layer' || path === 'layer-reuse') {
    if (op !== 'trainStep') throw new Error('the layer paths are a training step (forward + backward)');
    const layer = new BatchNorm(C, { axis, eps, reuseOutputs: path === 'layer-reuse' });
    layer.gamma!.set(i.gamma);
    layer.beta!.set(i.beta);
    return {
      threads,
      run: () => {
        layer.forward(i.x, shape);
        return layer.backward(i.dy);
      },
    };
  }
  if (path !== 'alloc' && path !== 'dest') throw new Error(`unknown path ${path}`);
  // 'dest' gives every output; each call still builds its options, as 'alloc' does.
  const given = path === 'dest';
  const array = (length: number) => (given ? new Float32Array(length) : undefined);
  const [out, saveMean, saveInvStd, dx, dgamma, dbeta] = [n, C, C, n, C, C].map(array);
  const train = () => forwardTrain(i.x, shape, { ...common, eps, out, saveMean, saveInvStd });
  const back = (s: { saveMean: Float32Array; saveInvStd: Float32Array }) =>
    backward(i.dy, i.x, shape, { ...common, saveMean: s.saveMean, saveInvStd: s.saveInvStd, dx, dgamma, dbeta }).dx;
  const stats = train();
  const run = {
    forwardTrain: () => train().y,
    forwardInference: () => forwardInference(i.x, shape, { ...common, eps, runningMean: i.runningMean, runningVar: i.runningVar, out }),
    backward: () => back(stats),
    trainStep: () => back(train()),
  }[op];
  if (!run) throw new Error(`unknown op ${op}`);
  return { threads, run };
}

function main() {
  const info = backendInfo();
  if (info.backend !== 'native') throw new Error(`the package runs its JS backend here (${info.fallbackReason ?? ''})`);
  const cells = new Map<string, Cell>();
  console.log(`ready batchnorm ${info.version}`);
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [verb, id, ...rest] = line.split(' ');
    try {
      if (verb === 'setup') {
        const [path, op, layout, threads, eps, file, dims] = rest;
        cells.set(id, setup(path, op, layout, Number(threads), Number(eps), file, dims.split('x').map(Number)));
        console.log('ok');
      } else if (verb === 'run') {
        const cell = cells.get(id)!;
        setNumThreads(cell.threads);
        for (let k = Number(rest[0] ?? 0); k > 0; k--) cell.run();
        const start = process.hrtime.bigint();
        cell.last = cell.run();
        console.log(`ok ${Number(process.hrtime.bigint() - start) / 1e6}`);
      } else if (verb === 'save') {
        const last = cells.get(id)!.last!;
        writeFileSync(rest[0], Buffer.from(last.buffer, last.byteOffset, last.byteLength));
        console.log('ok');
      } else if (verb === 'free') {
        cells.delete(id);
        console.log('ok');
      } else {
        console.log(`error unknown request ${verb}`);
      }
    } catch (e) {
      console.log(`error ${(e as Error).message.split('\n')[0]}`);
    }
  });
}

main();
