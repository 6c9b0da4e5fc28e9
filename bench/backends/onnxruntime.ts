/**
 * onnxruntime-node: a one-node BatchNormalization model built in code (bench/onnx-model.ts),
 * inference only (ONNX training mode is not in the CPU provider's default build), NCHW only
 * (ONNX's channel axis is 1). The output tensor is preallocated and passed to session.run.
 */
import { batchNormModel } from '../onnx-model';
import type { BenchBackend, Cell, Prepared } from './types';

type Ort = typeof import('onnxruntime-node');

export function onnxruntimeBackend(ort: Ort): BenchBackend {
  return {
    name: 'onnxruntime',
    threadsUsed: (t) => t,
    unsupported(cell: Cell) {
      if (cell.op !== 'forwardInference') return 'inference only';
      if (cell.c.layout === 'nhwc') return 'NCHW only';
      return undefined;
    },
    async prepare(cell: Cell): Promise<Prepared> {
      const { c, inputs: i } = cell;
      const model = batchNormModel(c.shape, { scale: i.gamma, bias: i.beta, mean: i.runningMean, variance: i.runningVar, eps: i.eps });
      const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: cell.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
      const feeds = { X: new ort.Tensor('float32', i.x, c.shape) };
      const y = new Float32Array(c.elements);
      const fetches = { Y: new ort.Tensor('float32', y, c.shape) };
      return {
        run: async () => {
          await session.run(feeds, fetches);
        },
        output: () => y,
        dispose: () => void session.release(),
      };
    },
  };
}
