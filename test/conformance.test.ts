/**
 * Peers' published BatchNorm test data (../shared/conformance): the ONNX backend node tests and
 * the TensorFlow.js batchnorm tests, mapped onto this package's API. Runs once per backend.
 * ONNX momentum m is Keras-style, so it maps to momentum = 1 - m with the biased running
 * variance (unbiased: false). tfjs normalises along the last axis with given statistics, so
 * its cases are axis -1 forwardInference calls and useGlobalStats backward calls.
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import { describe, expect, test } from 'vitest';

import { backward, forwardInference, forwardTrain } from '../lib/index';
import { expectElementwise, expectRelative } from './helpers/reference';

const dir = join(__dirname, '..', '..', 'shared', 'conformance');
const f32 = (a: number[]) => Float32Array.from(a);

interface OnnxTensor {
  dims: number[];
  data: number[];
}
interface OnnxCase {
  name: string;
  attributes: { epsilon?: number; momentum?: number; training_mode?: number };
  training_mode: number;
  inputs: Record<'X' | 'scale' | 'B' | 'input_mean' | 'input_var', OnnxTensor>;
  outputs: Record<string, OnnxTensor>;
}

const onnx = JSON.parse(readFileSync(join(dir, 'onnx', 'cases.json'), 'utf8')) as { cases: OnnxCase[] };

describe.each(onnx.cases)('ONNX $name', (c) => {
  const { X, scale, B, input_mean: mean, input_var: variance } = c.inputs;
  const eps = c.attributes.epsilon ?? 1e-5;
  const opts = { gamma: f32(scale.data), beta: f32(B.data), eps };

  test(c.training_mode ? 'forwardTrain: Y and running statistics' : 'forwardInference: Y', () => {
    if (!c.training_mode) {
      const y = forwardInference(f32(X.data), X.dims, { ...opts, runningMean: f32(mean.data), runningVar: f32(variance.data) });
      expectElementwise(y, Float64Array.from(c.outputs.Y.data), 'Y');
      return;
    }
    const runningMean = f32(mean.data);
    const runningVar = f32(variance.data);
    const m = c.attributes.momentum ?? 0.9;
    const { y } = forwardTrain(f32(X.data), X.dims, { ...opts, runningMean, runningVar, momentum: 1 - m, unbiased: false });
    expectElementwise(y, Float64Array.from(c.outputs.Y.data), 'Y');
    expectRelative(runningMean, c.outputs.running_mean.data, 'running_mean');
    expectRelative(runningVar, c.outputs.running_var.data, 'running_var');
  });
});

interface TfjsForward {
  it: string;
  shape: number[];
  x: number[];
  mean: number[];
  variance: number[];
  offset: number[] | null;
  scale: number[] | null;
  eps: number;
  expect: number[] | 'formula';
}
interface TfjsGradient extends TfjsForward {
  dy: number[];
  gradX: number[];
  gradOffset: number[];
  gradScale: number[];
}
interface TfjsError {
  it: string;
  fn: 'forwardInference';
  shape: number[];
  bad: 'x' | 'runningMean' | 'runningVar' | 'gamma' | 'beta';
  value: unknown;
}

const tfjs = JSON.parse(readFileSync(join(dir, 'tfjs', 'cases.json'), 'utf8')) as {
  forward: TfjsForward[];
  gradients: TfjsGradient[];
  errors: TfjsError[];
};

/** tfjs's own closeness check (expectArraysClose): |a - e| <= 1e-3. */
const tfjsClose = (actual: ArrayLike<number>, expected: ArrayLike<number>) => {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(1e-3);
};

const tfjsOptions = (t: TfjsForward) => ({
  axis: -1,
  runningMean: f32(t.mean),
  runningVar: f32(t.variance),
  eps: t.eps,
  ...(t.scale ? { gamma: f32(t.scale) } : {}),
  ...(t.offset ? { beta: f32(t.offset) } : {}),
});

describe('TensorFlow.js', () => {
  test.each(tfjs.forward)('forward: $it', (t) => {
    const y = forwardInference(f32(t.x), t.shape, tfjsOptions(t));
    if (t.expect !== 'formula') return tfjsClose(y, t.expect);
    // tfjs: (x - mean) * scale / sqrt(variance + eps) + offset, along the last axis.
    const C = t.mean.length;
    const want = t.x.map((v, k) => {
      const c = k % C;
      return ((v - t.mean[c]) * (t.scale ? t.scale[c] : 1)) / Math.sqrt(t.variance[c] + t.eps) + (t.offset ? t.offset[c] : 0);
    });
    expectElementwise(y, Float64Array.from(want), 'y');
  });

  test.each(tfjs.gradients)('gradients: $it', (t) => {
    const o = tfjsOptions(t);
    const saveInvStd = Float32Array.from(t.variance, (v) => 1 / Math.sqrt(v + t.eps));
    const g = backward(f32(t.dy), f32(t.x), t.shape, {
      axis: -1,
      gamma: o.gamma,
      saveMean: o.runningMean,
      saveInvStd,
      useGlobalStats: true,
    });
    tfjsClose(g.dx, t.gradX);
    tfjsClose(g.dbeta, t.gradOffset);
    tfjsClose(g.dgamma, t.gradScale);
  });

  test.each(tfjs.errors)('errors: $it', (t) => {
    const n = t.shape.reduce((p, d) => p * d, 1);
    const C = t.shape[t.shape.length - 1];
    const args: Record<string, unknown> = {
      x: new Float32Array(n),
      runningMean: new Float32Array(C),
      runningVar: new Float32Array(C).fill(1),
    };
    args[t.bad] = t.value;
    const { x, ...opts } = args;
    expect(() => forwardInference(x as Float32Array, t.shape, { axis: -1, ...opts } as never)).toThrow(TypeError);
  });
});
