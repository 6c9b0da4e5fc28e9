/**
 * The layer's buffers (SPEC section 9, issue 11): destinations for forward and backward, and the
 * `reuseOutputs` option with its documented lifetimes. Runs on both backends (vitest.config.mts).
 */
import { describe, expect, test } from 'vitest';

import { BatchNorm, BatchNormRangeError, BatchNormTypeError } from '../lib/index';
import { rng } from './helpers/random';
import { expectSameBits } from './helpers/reference';

const shape = [6, 4, 3];
const n = 72;
const r = rng(11);
const xs = [r.normals(n, 1, 2), r.normals(n, -1, 0.5), r.normals(n, 3, 1)];
const dy = r.normals(n);

/** A Float32Array whose buffer was transferred away: detached, its length now 0. */
function detached(): Float32Array {
  const a = new Float32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

/** A layer with non-trivial parameters; every layer of a test starts from the same ones. */
function layer(options = {}) {
  const bn = new BatchNorm(4, options);
  bn.gamma!.set([0.5, 1.5, -1, 2]);
  bn.beta!.set([0.1, -0.2, 0.3, 0]);
  return bn;
}

/** y and dx of one training step, and the gradients, on a fresh layer without destinations. */
function plainStep(x: Float32Array, options = {}) {
  const bn = layer(options);
  const y = bn.forward(x, shape).slice();
  const dx = bn.backward(dy).slice();
  return { y, dx, gradGamma: bn.gradGamma!.slice(), runningMean: bn.runningMean!.slice() };
}

describe('destinations', () => {
  test('forward writes opts.out and backward opts.dx, with the same bits as new arrays', () => {
    const want = plainStep(xs[0]);
    const bn = layer();
    const out = new Float32Array(n);
    const dx = new Float32Array(n);
    expect(bn.forward(xs[0], shape, { out })).toBe(out);
    expect(bn.backward(dy, { dx })).toBe(dx);
    expectSameBits(out, want.y, 'y');
    expectSameBits(dx, want.dx, 'dx');
    expectSameBits(bn.gradGamma!, want.gradGamma, 'gradGamma');
  });

  test('null destinations and residuals are absent, as in the functions', () => {
    const want = plainStep(xs[0]);
    const bn = layer();
    expectSameBits(bn.forward(xs[0], shape, { out: null as never }), want.y, 'y');
    expectSameBits(bn.backward(dy, { dx: null as never }), want.dx, 'dx');
    const fused = layer();
    expectSameBits(fused.forward(xs[0], shape, { residual: null as never }), want.y, 'y, residual null');
    expectSameBits(fused.backward(dy, { dresidual: null as never }), want.dx, 'dx, dresidual null');
  });

  test('the same through forwardAsync and backwardAsync, and with ghost batches', async () => {
    const want = plainStep(xs[1], { virtualBatchSize: 2 });
    const bn = layer({ virtualBatchSize: 2 });
    const out = new Float32Array(n);
    const dx = new Float32Array(n);
    expect(await bn.forwardAsync(xs[1], shape, { out })).toBe(out);
    expect(await bn.backwardAsync(dy, { dx })).toBe(dx);
    expectSameBits(out, want.y, 'y');
    expectSameBits(dx, want.dx, 'dx');
  });

  test('dx may be dy itself (in place); in eval mode out may be x itself, whose backward a layer with gamma refuses', () => {
    const want = plainStep(xs[0]);
    const bn = layer();
    bn.forward(xs[0], shape);
    const inPlace = dy.slice();
    expect(bn.backward(inPlace, { dx: inPlace })).toBe(inPlace);
    expectSameBits(inPlace, want.dx, 'dx in place');

    const evalLayer = layer().eval();
    const expected = evalLayer.forward(xs[2], shape).slice();
    const x = xs[2].slice();
    expect(evalLayer.forward(x, shape, { out: x })).toBe(x);
    expectSameBits(x, expected, 'y in place');
    // x now holds y, and dL/dgamma needs x: refused, as PyTorch's autograd refuses a backward
    // through a tensor modified in place; nothing changes.
    expect(() => evalLayer.backward(dy)).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INPUT_OVERWRITTEN' }));
    expectSameBits(evalLayer.gradGamma!, new Float32Array(4), 'gradGamma untouched');
    // Without gamma the backward needs no x: the same dx as after a forward into a new array.
    const noGamma = new BatchNorm(4, { affine: false }).eval();
    noGamma.forward(xs[2], shape);
    const dxWant = noGamma.backward(dy).slice();
    const x2 = xs[2].slice();
    noGamma.forward(x2, shape, { out: x2 });
    expectSameBits(noGamma.backward(dy), dxWant, 'dx without gamma, after a forward in place');
  });

  const bad: Array<[string, () => void, new (...args: never[]) => Error, string]> = [
    ['out of the wrong length', () => layer().forward(xs[0], shape, { out: new Float32Array(n - 1) }), BatchNormRangeError, 'ERR_BATCHNORM_LENGTH_MISMATCH'],
    ['out that is not a Float32Array', () => layer().forward(xs[0], shape, { out: new Float64Array(n) as never }), BatchNormTypeError, 'ERR_BATCHNORM_INVALID_TYPE'],
    ['out = x in training (backward reads x)', () => {
      const x = xs[0].slice();
      layer().forward(x, shape, { out: x });
    }, BatchNormRangeError, 'ERR_BATCHNORM_OVERLAP'],
    ['opts that is not an object', () => layer().forward(xs[0], shape, 3 as never), BatchNormTypeError, 'ERR_BATCHNORM_INVALID_TYPE'],
    // SPEC section 4: a detached buffer is a TypeError, before its length (now 0) is compared.
    ['a detached x', () => layer().forward(detached(), shape), BatchNormTypeError, 'ERR_BATCHNORM_DETACHED'],
    ['a detached out', () => layer().forward(xs[0], shape, { out: detached() }), BatchNormTypeError, 'ERR_BATCHNORM_DETACHED'],
  ];
  test.each(bad)('forward with %s throws and changes nothing', (_, call, cls, code) => {
    expect(call).toThrow(cls);
    try {
      call();
    } catch (e) {
      expect((e as { code: string }).code).toBe(code);
    }
  });

  test('a bad dx throws before anything changes: the layer can still run that backward', () => {
    const bn = layer();
    const x = xs[0].slice();
    bn.forward(x, shape);
    const grad = bn.gradGamma!.slice();
    const padded = new Float32Array(n + 1);
    padded.set(dy);
    const upstream = padded.subarray(0, n);
    const cases: Array<[Float32Array, string]> = [
      [new Float32Array(n + 1), 'ERR_BATCHNORM_LENGTH_MISMATCH'],
      [detached(), 'ERR_BATCHNORM_DETACHED'],
      [x, 'ERR_BATCHNORM_OVERLAP'],
      [padded.subarray(1), 'ERR_BATCHNORM_OVERLAP'], // one float past dy: not the in-place pair
    ];
    for (const [dx, code] of cases) expect(() => bn.backward(upstream, { dx })).toThrow(expect.objectContaining({ code }));
    expect(() => bn.backward(detached())).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_DETACHED' }));
    expectSameBits(bn.gradGamma!, grad, 'gradGamma untouched');
    expectSameBits(upstream, dy, 'dy untouched');
    expectSameBits(bn.backward(dy), plainStep(xs[0]).dx, 'the backward that follows');
  });
});

describe('reuseOutputs', () => {
  test('a training loop gets the same two arrays back every step, with the right values', () => {
    const bn = layer({ reuseOutputs: true });
    const fresh = layer();
    const seen = new Set<Float32Array>();
    for (let step = 0; step < 4; step++) {
      const x = xs[step % 3];
      const y = bn.forward(x, shape);
      const dx = bn.backward(dy);
      seen.add(y).add(dx);
      expectSameBits(y, fresh.forward(x, shape), `y, step ${step}`);
      expectSameBits(dx, fresh.backward(dy), `dx, step ${step}`);
      expect(y).not.toBe(dx);
    }
    expect(seen.size).toBe(2);
    expectSameBits(bn.runningMean!, fresh.runningMean!, 'runningMean');
  });

  test('two forwards before one backward leave the first output intact', () => {
    const bn = layer({ reuseOutputs: true });
    const y1 = bn.forward(xs[0], shape);
    const first = y1.slice();
    const y2 = bn.forward(xs[1], shape);
    expect(y2).not.toBe(y1);
    expectSameBits(y1, first, 'first y after a second forward');
  });

  test('an output is never the input it is computed from, nor dx the dy', () => {
    const bn = layer({ reuseOutputs: true });
    const want = plainStep(xs[0]);
    const y = bn.forward(xs[0], shape);
    bn.backward(dy);
    // Feed the layer its own output, then its own dx as the upstream gradient.
    const x = y;
    const copy = x.slice();
    const y2 = bn.forward(x, shape);
    expect(y2).not.toBe(x);
    expectSameBits(x, copy, 'x untouched');
    const dx1 = bn.backward(dy);
    bn.forward(xs[0], shape);
    const upstream = dx1;
    const dx2 = bn.backward(upstream);
    expect(dx2).not.toBe(upstream);
    expectSameBits(bn.forward(xs[0], shape), want.y, 'y after all that');
  });

  test('nor a view of the input: its own array fed back as another Float32Array on the same memory', () => {
    const bn = layer({ reuseOutputs: true });
    const fresh = layer();
    const y = bn.forward(xs[0], shape);
    fresh.forward(xs[0], shape);
    fresh.backward(dy);
    const dx = bn.backward(dy);
    const x = new Float32Array(y.buffer, y.byteOffset, y.length);
    const copy = x.slice();
    const y2 = bn.forward(x, shape);
    expectSameBits(x, copy, 'x untouched');
    expectSameBits(y2, fresh.forward(copy, shape), 'y');
    const upstream = new Float32Array(dx.buffer, dx.byteOffset, dx.length);
    const upstreamCopy = upstream.slice();
    expectSameBits(bn.backward(upstream), fresh.backward(upstreamCopy), 'dx (x as the forward read it)');
    expectSameBits(upstream, upstreamCopy, 'dy untouched');
  });

  test('destinations win over the layer\'s own arrays; a new shape gets new arrays', () => {
    const bn = layer({ reuseOutputs: true });
    const out = new Float32Array(n);
    expect(bn.forward(xs[0], shape, { out })).toBe(out);
    bn.backward(dy);
    const small = bn.forward(xs[0].subarray(0, 36), [3, 4, 3]);
    expect(small.length).toBe(36);
    expect(bn.backward(dy.subarray(0, 36)).length).toBe(36);
  });

  test('is a layer option: validated, and kept by options()', () => {
    expect(() => new BatchNorm(4, { reuseOutputs: 'yes' as never })).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_TYPE' }));
    expect(new BatchNorm(4, { reuseOutputs: true }).options().reuseOutputs).toBe(true);
    expect(BatchNorm.fromKeras(4, { reuseOutputs: true }).options().reuseOutputs).toBe(true);
    expect(new BatchNorm(4).options().reuseOutputs).toBe(false);
  });
});

describe('arrays of other kinds, and arrays given away', () => {
  // Float32Arrays all the same (SPEC section 4 checks the type, not the class): the layer cuts
  // ghost batches out of them, which subarray() would do through the subclass's species.
  class Sized extends Float32Array {
    constructor(length: number) {
      super(length);
    }
  }
  class OtherSpecies extends Float32Array {
    static get [Symbol.species]() {
      return Float64Array;
    }
  }
  test.each([Sized, OtherSpecies])('a Float32Array subclass (%o) works as a plain one, with ghost batches and a residual', async (Subclass) => {
    const of = (a: Float32Array) => {
      const s = new Subclass(a.length);
      s.set(a);
      return s;
    };
    const options = { virtualBatchSize: 2, activation: 'relu' as const };
    const plain = layer(options);
    const want = { y: plain.forward(xs[0], shape, { residual: xs[1] }).slice(), dx: plain.backward(dy).slice() };
    for (const run of ['sync', 'async']) {
      const bn = layer(options);
      const [out, dx, dresidual] = [new Subclass(n), new Subclass(n), new Subclass(n)];
      if (run === 'sync') {
        bn.forward(of(xs[0]), shape, { out, residual: of(xs[1]) });
        bn.backward(of(dy), { dx, dresidual });
      } else {
        await bn.forwardAsync(of(xs[0]), shape, { out, residual: of(xs[1]) });
        await bn.backwardAsync(of(dy), { dx, dresidual });
      }
      expectSameBits(out, want.y, `${run} y`);
      expectSameBits(dx, want.dx, `${run} dx`);
      expectSameBits(bn.gradGamma!, plain.gradGamma!, `${run} gradGamma`);
    }
    // Eval mode with relu reads where the ReLU passed from y.
    const frozen = layer({ activation: 'relu' }).eval();
    frozen.forward(xs[2], shape);
    const wantDx = frozen.backward(dy).slice();
    frozen.forward(of(xs[2]), shape, { out: new Subclass(n) });
    expectSameBits(frozen.backward(of(dy)), wantDx, 'eval dx');
  });

  test("the forward's x (or, in eval mode with relu, its y) transferred away before backward: ERR_BATCHNORM_DETACHED, naming it", () => {
    const training = layer();
    const x = xs[0].slice();
    training.forward(x, shape);
    const frozen = layer({ activation: 'relu' }).eval();
    const y = frozen.forward(xs[1], shape);
    const cases: Array<[BatchNorm, Float32Array, string]> = [[training, x, 'x'], [frozen, y, 'y']];
    for (const [bn, given, name] of cases) {
      const grad = bn.gradGamma!.slice();
      structuredClone(given.buffer, { transfer: [given.buffer as ArrayBuffer] });
      expect(() => bn.backward(dy)).toThrow(BatchNormTypeError);
      expect(() => bn.backward(dy)).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_DETACHED', message: expect.stringContaining(`for ${name} (the last forward's)`) }));
      expectSameBits(bn.gradGamma!, grad, 'gradGamma untouched');
    }
  });

  test("the layer's own arrays transferred away (parameters(), gradients sent to another thread): every call says so, none loses an update silently", async () => {
    for (const name of ['gamma', 'beta', 'gradGamma', 'gradBeta', 'runningMean', 'runningVar'] as const) {
      const bn = layer();
      bn.forward(xs[0], shape);
      const array = bn[name]!;
      structuredClone(array.buffer, { transfer: [array.buffer as ArrayBuffer] });
      const calls: Array<[string, () => unknown]> = [
        ['backward', () => bn.backward(dy)],
        ['forward', () => bn.forward(xs[1], shape)],
        ['zeroGrad', () => bn.zeroGrad()],
        ['stateDict', () => bn.stateDict()],
        ['getWeights', () => bn.getWeights()],
        ['clipGamma', () => bn.clipGamma(0, 1)],
      ];
      for (const [call, act] of calls) {
        expect(act, `${name}: ${call}`).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_BATCHNORM_DETACHED', message: expect.stringContaining(`layer.${name}`) }));
      }
      await expect(bn.forwardAsync(xs[1], shape)).rejects.toThrow(BatchNormTypeError);
    }
  });
});
