/**
 * A small multilayer perceptron written plainly: Dense (PyTorch layout, weight [out, in]),
 * ReLU, softmax cross-entropy and SGD with momentum. The optional BatchNorm between the first
 * Dense and the ReLU is the package's layer.
 */
import { BatchNorm } from '../dist/index';
import { seededRandom } from '../dist/layer/random';

/**
 * A fully connected layer y = x W^T + b, with gradients. The loops run over a transposed copy
 * of W so that the innermost loop is contiguous, and skip zero inputs (images and ReLU outputs
 * are mostly zeros).
 */
export class Dense {
  readonly gradWeight: Float32Array;
  readonly gradBias: Float32Array;
  #input: Float32Array | null = null;

  constructor(
    readonly inputs: number,
    readonly outputs: number,
    readonly weight: Float32Array,
    readonly bias: Float32Array,
  ) {
    this.gradWeight = new Float32Array(weight.length);
    this.gradBias = new Float32Array(bias.length);
  }

  /** PyTorch's default initialisation: weight and bias uniform in +-1/sqrt(inputs). */
  static create(inputs: number, outputs: number, seed: number): Dense {
    const random = seededRandom(seed);
    const bound = 1 / Math.sqrt(inputs);
    const uniform = (n: number) => Float32Array.from({ length: n }, () => (2 * random.uniform() - 1) * bound);
    return new Dense(inputs, outputs, uniform(inputs * outputs), uniform(outputs));
  }

  /** The shape of `weight`, for the package's folding and pruning helpers. */
  get shape(): number[] {
    return [this.outputs, this.inputs];
  }

  /** y [N, outputs] for x [N, inputs]; keeps x for backward. */
  forward(x: Float32Array, N: number): Float32Array {
    const { inputs, outputs, bias } = this;
    const weightT = transpose(this.weight, outputs, inputs);
    const y = new Float32Array(N * outputs);
    for (let n = 0; n < N; n++) {
      const out = n * outputs;
      y.set(bias, out);
      for (let i = 0; i < inputs; i++) {
        const v = x[n * inputs + i];
        if (v === 0) continue;
        for (let o = 0, w = i * outputs; o < outputs; o++) y[out + o] += v * weightT[w + o];
      }
    }
    this.#input = x;
    return y;
  }

  /** Adds dL/dW and dL/db to the gradients; returns dL/dx when asked. */
  backward(dy: Float32Array, N: number, wantInputGradient: boolean): Float32Array | null {
    const x = this.#input!;
    const { inputs, outputs, weight } = this;
    const gradT = new Float32Array(inputs * outputs);
    for (let n = 0; n < N; n++) {
      const g = n * outputs;
      for (let o = 0; o < outputs; o++) this.gradBias[o] += dy[g + o];
      for (let i = 0; i < inputs; i++) {
        const v = x[n * inputs + i];
        if (v === 0) continue;
        for (let o = 0, w = i * outputs; o < outputs; o++) gradT[w + o] += v * dy[g + o];
      }
    }
    const grad = transpose(gradT, inputs, outputs);
    for (let k = 0; k < grad.length; k++) this.gradWeight[k] += grad[k];
    if (!wantInputGradient) return null;
    const dx = new Float32Array(N * inputs);
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < outputs; o++) {
        const g = dy[n * outputs + o];
        if (g === 0) continue;
        for (let i = 0, w = o * inputs; i < inputs; i++) dx[n * inputs + i] += g * weight[w + i];
      }
    }
    return dx;
  }
}

/** The transpose of a [rows, cols] matrix. */
function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/** max(0, x), and its backward. */
export const relu = {
  forward: (x: Float32Array) => x.map((v) => (v > 0 ? v : 0)),
  backward: (dy: Float32Array, y: Float32Array) => dy.map((g, k) => (y[k] > 0 ? g : 0)),
};

/** Mean softmax cross-entropy of logits [N, classes]; returns the loss and dL/dlogits. */
export function softmaxCrossEntropy(logits: Float32Array, labels: Uint8Array, N: number, classes: number) {
  const grad = new Float32Array(logits.length);
  let loss = 0;
  for (let n = 0; n < N; n++) {
    const row = logits.subarray(n * classes, (n + 1) * classes);
    const max = Math.max(...row);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    loss += Math.log(sum) + max - row[labels[n]];
    for (let c = 0; c < classes; c++) grad[n * classes + c] = (Math.exp(row[c] - max) / sum - (c === labels[n] ? 1 : 0)) / N;
  }
  return { loss: loss / N, grad };
}

/** A parameter and its gradient. */
export interface Param {
  value: Float32Array;
  grad: Float32Array;
}

/** SGD with momentum, PyTorch's form: v = momentum * v + g; p -= lr * v. */
export class Sgd {
  #velocity = new Map<Float32Array, Float32Array>();

  constructor(
    readonly lr: number,
    readonly momentum: number,
  ) {}

  step(params: Param[]): void {
    for (const { value, grad } of params) {
      let v = this.#velocity.get(value);
      if (!v) this.#velocity.set(value, (v = new Float32Array(value.length)));
      for (let k = 0; k < value.length; k++) {
        v[k] = this.momentum * v[k] + grad[k];
        value[k] -= this.lr * v[k];
      }
    }
  }
}

/** Dense -> [BatchNorm] -> ReLU -> Dense. */
export class Mlp {
  constructor(
    public hidden: Dense,
    public norm: BatchNorm | null,
    public output: Dense,
  ) {}

  /** A fresh network; the same seed gives the same Dense weights with or without BN. */
  static create(inputs: number, width: number, classes: number, seed: number, norm: BatchNorm | null): Mlp {
    return new Mlp(Dense.create(inputs, width, seed), norm, Dense.create(width, classes, seed + 1));
  }

  /** Logits [N, classes], keeping what backward needs. */
  forward(x: Float32Array, N: number): { logits: Float32Array; activations: Float32Array } {
    const h = this.hidden.forward(x, N);
    return this.#head(this.norm ? this.norm.forward(h, [N, this.hidden.outputs]) : h, N);
  }

  /** {@link forward} with the BatchNorm layer's async call (which a layer synchronized through an asynchronous collective needs). */
  async forwardAsync(x: Float32Array, N: number): Promise<{ logits: Float32Array; activations: Float32Array }> {
    const h = this.hidden.forward(x, N);
    return this.#head(this.norm ? await this.norm.forwardAsync(h, [N, this.hidden.outputs]) : h, N);
  }

  backward(dLogits: Float32Array, activations: Float32Array, N: number): void {
    const dh = this.#headBackward(dLogits, activations, N);
    this.hidden.backward(this.norm ? this.norm.backward(dh) : dh, N, false);
  }

  /** {@link backward} with the BatchNorm layer's async call. */
  async backwardAsync(dLogits: Float32Array, activations: Float32Array, N: number): Promise<void> {
    const dh = this.#headBackward(dLogits, activations, N);
    this.hidden.backward(this.norm ? await this.norm.backwardAsync(dh) : dh, N, false);
  }

  /** ReLU and the output layer, from the (normalised) hidden layer. */
  #head(h: Float32Array, N: number) {
    const activations = relu.forward(h);
    return { logits: this.output.forward(activations, N), activations };
  }

  /** dL/d(normalised hidden layer), from dL/dlogits. */
  #headBackward(dLogits: Float32Array, activations: Float32Array, N: number): Float32Array {
    return relu.backward(this.output.backward(dLogits, N, true)!, activations);
  }

  parameters(): Param[] {
    const dense = (d: Dense) => [
      { value: d.weight, grad: d.gradWeight },
      { value: d.bias, grad: d.gradBias },
    ];
    return [...dense(this.hidden), ...(this.norm?.parameters() ?? []), ...dense(this.output)];
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad.fill(0);
  }

  /** Learnable parameters (BN's running statistics are buffers, not parameters). */
  parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.value.length, 0);
  }

  /** Training (true) or evaluation mode for the BN layer. */
  train(mode: boolean): void {
    this.norm?.train(mode);
  }
}
