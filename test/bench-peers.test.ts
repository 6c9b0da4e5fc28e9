/**
 * The benchmark's peers time what their row is labelled: here TensorFlow.js, whose only BatchNorm
 * backward is tf.grads, which runs the forward pass too.
 */
import * as tf from '@tensorflow/tfjs';
import { expect, test } from 'vitest';

import { tfjsBackend } from '../bench/backends/tfjs';
import type { Cell } from '../bench/backends/types';
import { noise, type Case, type Op } from '../bench/workload';
import { backward, forwardTrain } from '../lib/index';
import { relativeError } from '../bench/timing';

const c: Case = { name: '4x3x5x5-nhwc', dims: [4, 3, 5, 5], layout: 'nhwc', shape: [4, 5, 5, 3], axis: -1, elements: 300 };
const inputs = {
  x: noise(300, 1, 0.5, 6),
  dy: noise(300, 2, 0, 2),
  gamma: noise(3, 3, 1, 0.5),
  beta: noise(3, 4, 0, 1),
  runningMean: noise(3, 5, 0.5, 0.2),
  runningVar: noise(3, 6, 3, 1),
  saveMean: new Float32Array(3),
  saveInvStd: new Float32Array(3),
  eps: 1e-5,
};
const cell = (op: Op): Cell => ({ op, c, threads: 1, inputs });

test('tfjs: no backward row (tf.grads is forward + backward); its training step is one, dx as ours', async () => {
  const b = tfjsBackend(tf, 'cpu');
  expect(b.unsupported(cell('backward'))).toMatch(/no standalone backward/);
  expect(b.unsupported(cell('trainStep'))).toBeUndefined();
  const p = await b.prepare(cell('trainStep'));
  await p.run();
  const { gamma, beta, eps } = inputs;
  const stats = forwardTrain(inputs.x, c.shape, { axis: c.axis, gamma, beta, eps });
  const { dx } = backward(inputs.dy, inputs.x, c.shape, { axis: c.axis, gamma, saveMean: stats.saveMean, saveInvStd: stats.saveInvStd });
  expect(relativeError(await p.output(), dx)).toBeLessThan(1e-3);
  await p.dispose();
});
