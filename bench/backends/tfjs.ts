/**
 * TensorFlow.js with its CPU (plain JS) and WebAssembly (SIMD, one thread under Node)
 * backends. tf.batchNorm normalises along the last axis, so NCHW is not supported. Inference
 * is tf.batchNorm with given statistics; training forward is tf.moments + tf.batchNorm;
 * the training step is tf.grads of sum(y * dy) with respect to x, gamma and beta. tfjs has no
 * standalone BatchNorm backward (tf.grads always runs the forward pass too), so it has no
 * backward row: timed there, its forward + backward stood against our backward alone. Outputs
 * are allocated per call by tfjs itself.
 */
import type { BenchBackend, Cell, Prepared } from './types';

type Tf = typeof import('@tensorflow/tfjs');
type Tensor = import('@tensorflow/tfjs').Tensor;

export function tfjsBackend(tf: Tf, which: 'cpu' | 'wasm'): BenchBackend {
  return {
    name: `tfjs-${which}`,
    threadsUsed: () => 1,
    unsupported: (cell: Cell) =>
      cell.c.layout === 'nchw' ? 'normalises the last axis only (no NCHW)' : cell.op === 'backward' ? 'no standalone backward (tf.grads runs the forward too: its trainStep row)' : undefined,
    async prepare(cell: Cell): Promise<Prepared> {
      await tf.setBackend(which);
      const { c, inputs: i } = cell;
      // Tensors are created while this backend is active, so running on it never moves data.
      const x = tf.tensor(i.x, c.shape);
      const dy = tf.tensor(i.dy, c.shape);
      const gamma = tf.tensor1d(i.gamma);
      const beta = tf.tensor1d(i.beta);
      const mean = tf.tensor1d(i.runningMean);
      const variance = tf.tensor1d(i.runningVar);
      const axes = c.shape.map((_, d) => d).slice(0, -1);
      const train = (xv: Tensor, g: Tensor, b: Tensor) => {
        const m = tf.moments(xv, axes);
        return tf.batchNorm(xv, m.mean, m.variance, b, g, i.eps);
      };
      const grads = tf.grads((xv: Tensor, g: Tensor, b: Tensor) => train(xv, g, b));
      let last: Tensor | undefined;
      const keep = (t: Tensor) => {
        last?.dispose();
        last = tf.keep(t);
      };
      const op = {
        forwardTrain: () => keep(tf.tidy(() => train(x, gamma, beta))),
        forwardInference: () => keep(tf.tidy(() => tf.batchNorm(x, mean, variance, beta, gamma, i.eps))),
        trainStep: () => keep(tf.tidy(() => grads([x, gamma, beta], dy)[0])),
      }[cell.op as Exclude<Cell['op'], 'backward'>];
      return {
        run: async () => {
          if (tf.getBackend() !== which) await tf.setBackend(which);
          op();
        },
        output: () => last!.dataSync() as Float32Array,
        dispose: () => {
          last?.dispose();
          for (const t of [x, dy, gamma, beta, mean, variance]) t.dispose();
        },
      };
    },
  };
}
