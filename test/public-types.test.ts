/**
 * The public types say what the runtime does. A user's file, type-checked against the package's
 * types as a user imports them ('batchnorm'), holds valid calls that must compile and invalid
 * ones that must not (`@ts-expect-error`), and pins each options type's keys, and which of them
 * take `null`, to the lists below; the runtime half then checks those lists: an option typed
 * `| null` takes null (as absent, for the functions' arrays), and any other option refuses it.
 */
import { describe, expect, test } from 'vitest';

import * as batchnorm from '../lib/index';
import { typeCheck } from './helpers/readme-snippets';

/** Per options type: every key, and those whose type admits `null`. */
const KEYS: Record<string, { all: string[]; nullable: string[] }> = {
  ForwardTrainOptions: {
    all: ['axis', 'gamma', 'beta', 'eps', 'momentum', 'runningMean', 'runningVar', 'unbiased', 'out', 'saveMean', 'saveInvStd', 'moments', 'activation', 'residual', 'reluMask'],
    nullable: ['gamma', 'beta', 'runningMean', 'runningVar', 'out', 'saveMean', 'saveInvStd', 'moments', 'residual', 'reluMask'],
  },
  ForwardInferenceOptions: {
    all: ['axis', 'gamma', 'beta', 'eps', 'runningMean', 'runningVar', 'out', 'activation', 'residual'],
    nullable: ['gamma', 'beta', 'out', 'residual'],
  },
  BackwardOptions: {
    all: ['axis', 'gamma', 'beta', 'saveMean', 'saveInvStd', 'useGlobalStats', 'dx', 'dgamma', 'dbeta', 'sums', 'localSums', 'activation', 'reluMask', 'dresidual'],
    nullable: ['gamma', 'beta', 'dx', 'dgamma', 'dbeta', 'sums', 'localSums', 'reluMask', 'dresidual'],
  },
  BatchMomentsOptions: { all: ['axis', 'mean', 'm2'], nullable: ['mean', 'm2'] },
  BackwardSumsOptions: { all: ['axis', 'saveMean', 'sumDy', 'sumDyXmu', 'activation', 'reluMask'], nullable: ['sumDy', 'sumDyXmu', 'reluMask'] },
  LayerForwardOptions: { all: ['out', 'residual'], nullable: ['out', 'residual'] },
  LayerBackwardOptions: { all: ['dx', 'dresidual'], nullable: ['dx', 'dresidual'] },
  BatchNormOptions: {
    all: ['axis', 'eps', 'momentum', 'affine', 'scale', 'center', 'trackRunningStats', 'unbiased', 'gammaInit', 'seed', 'activation', 'l1', 'virtualBatchSize', 'renorm', 'reuseOutputs', 'collective'],
    nullable: ['momentum', 'virtualBatchSize', 'renorm', 'collective'],
  },
  KerasBatchNormOptions: {
    all: ['axis', 'momentum', 'epsilon', 'center', 'scale', 'gammaInitializer', 'activation', 'l1', 'virtualBatchSize', 'renorm', 'reuseOutputs', 'collective'],
    nullable: ['virtualBatchSize', 'renorm', 'collective'],
  },
  WorkerGroupOptions: { all: ['capacity', 'timeoutMs', 'maxChannels'], nullable: [] },
  JoinOptions: { all: ['async', 'timeoutMs'], nullable: [] },
};

const union = (keys: string[]) => (keys.length === 0 ? 'never' : keys.map((k) => `'${k}'`).join(' | '));

/** Pins each options type's keys and nullable keys to KEYS. */
const KEY_CHECKS = Object.entries(KEYS)
  .map(([name, { all, nullable }]) => `const all${name}: Equal<keyof B.${name}, ${union(all)}> = true;\nconst null${name}: Equal<NullableKeys<B.${name}>, ${union(nullable)}> = true;`)
  .join('\n');

/** A user's file: what must compile, and (under @ts-expect-error) what must not. */
const USER = `
import * as B from 'batchnorm';
import { BatchNorm, backward, backwardSums, batchMoments, createWorkerGroup, forwardInference, forwardTrain, forwardTrainAsync, joinWorkerGroup, mergeMoments } from 'batchnorm';

type Equal<A, C> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends C ? 1 : 2 ? true : false;
type NullableKeys<T> = { [K in keyof T]-?: null extends T[K] ? K : never }[keyof T];
${KEY_CHECKS}

const x = new Float32Array(8);
const shape = [4, 2] as const;
const bn = new BatchNorm(2);

// A layer's arrays, null where it has none, go straight into the functions.
forwardInference(x, shape, { gamma: bn.gamma, beta: bn.beta, runningMean: bn.runningMean!, runningVar: bn.runningVar! });
forwardTrain(x, shape, { gamma: bn.gamma, beta: bn.beta, runningMean: bn.runningMean, runningVar: bn.runningVar });
// One object for the parameters of forwardTrain and forwardInference.
const params = { gamma: new Float32Array(2), runningMean: new Float32Array(2), runningVar: new Float32Array(2), momentum: 0.1 };
forwardTrain(x, shape, params);
forwardInference(x, shape, params);

// reluMask is in the result exactly when activation is 'relu'.
const relu = forwardTrain(x, shape, { activation: 'relu' });
const mask: Uint8Array = relu.reluMask;
const plain = forwardTrain(x, shape);
// @ts-expect-error: no mask without 'relu'
const noMask: Uint8Array = plain.reluMask;
const later: Promise<Uint8Array> = forwardTrainAsync(x, shape, { activation: 'relu' }).then((r) => r.reluMask);

// dresidual is in the result exactly when asked for.
const stats = { saveMean: relu.saveMean, saveInvStd: relu.saveInvStd };
const asked: Float32Array = backward(x, x, shape, { ...stats, activation: 'relu', reluMask: mask, dresidual: true }).dresidual;
// @ts-expect-error: not asked for
const notAsked: Float32Array = backward(x, x, shape, stats).dresidual;
backward(x, x, shape, { ...stats, dresidual: null });

// Synchronized statistics: each result feeds the next call as it is.
const moments = mergeMoments([batchMoments(x, shape), batchMoments(x, shape)]);
forwardTrain(x, shape, { moments });
const sums = backwardSums(x, x, shape, { saveMean: relu.saveMean });
backward(x, x, shape, { ...stats, sums, localSums: sums });

// Required options.
// @ts-expect-error: forwardInference needs the running statistics
forwardInference(x, shape, { gamma: bn.gamma });
// @ts-expect-error: backward needs the saved statistics
backward(x, x, shape, {});
// @ts-expect-error: a misspelt option
forwardTrain(x, shape, { epsilon: 1e-3 });

// The layer.
new BatchNorm(2, bn.options());
const keras: BatchNorm = BatchNorm.fromKeras(2, { momentum: 0.9, epsilon: 1e-3, gammaInitializer: 'zeros' });
const y: Float32Array = bn.forward(x, shape, { out: null, residual: null });
const dx: Float32Array = bn.backward(x, { dx: null, dresidual: null });
// @ts-expect-error: the layer's dresidual is a destination, not true
bn.backward(x, { dresidual: true });
bn.setWeights(bn.getWeights() as readonly Float32Array[]);

// Worker groups: synchronous unless { async: true }.
const group = createWorkerGroup(2);
const sync: void = joinWorkerGroup(group, 0).allReduceSum(new Float64Array(1));
const pending: Promise<void> = joinWorkerGroup(group, 1, { async: true }).allReduceSum(new Float64Array(1));
const either = joinWorkerGroup(group, 0, { async: Math.random() > 0.5 });
// @ts-expect-error: either kind may come back
const notKnown: void = either.allReduceSum(new Float64Array(1));

// Error codes are a closed union.
try {
  forwardTrain(x, shape);
} catch (e) {
  if (e instanceof B.BatchNormRangeError) {
    const code: B.BatchNormErrorCode = e.code;
    // @ts-expect-error: not a code the package throws
    const other: typeof code = 'ERR_BATCHNORM_NOT_A_CODE';
  }
}
`;

describe('public types', () => {
  test("a user's file compiles where the runtime takes the call and fails where it refuses it", () => {
    expect(typeCheck(new Map([['user.ts', USER]]))).toEqual([]);
  }, 120_000);
});

const shape = [4, 2];
const x = Float32Array.from({ length: 8 }, (_, i) => Math.sin(i + 0.5));
const dy = Float32Array.from({ length: 8 }, (_, i) => Math.cos(i));
const C = 2;
const saved = batchnorm.forwardTrain(x, shape);
const stats = { saveMean: saved.saveMean, saveInvStd: saved.saveInvStd };

/** Each options type's call with `opts` merged over a valid base; `null` keys are the test's. */
const CALLS: Record<string, (opts: Record<string, unknown>) => unknown> = {
  ForwardTrainOptions: (o) => batchnorm.forwardTrain(x, shape, o),
  ForwardInferenceOptions: (o) => batchnorm.forwardInference(x, shape, { runningMean: new Float32Array(C), runningVar: new Float32Array(C).fill(1), ...o }),
  BackwardOptions: (o) => batchnorm.backward(dy, x, shape, { ...stats, ...o } as batchnorm.BackwardOptions),
  BatchMomentsOptions: (o) => batchnorm.batchMoments(x, shape, o),
  BackwardSumsOptions: (o) => batchnorm.backwardSums(dy, x, shape, { saveMean: saved.saveMean, ...o }),
  LayerForwardOptions: (o) => new batchnorm.BatchNorm(C).forward(x, shape, o),
  LayerBackwardOptions: (o) => {
    const bn = new batchnorm.BatchNorm(C);
    bn.forward(x, shape);
    return bn.backward(dy, o);
  },
  BatchNormOptions: (o) => new batchnorm.BatchNorm(C, o),
  KerasBatchNormOptions: (o) => batchnorm.BatchNorm.fromKeras(C, o),
  WorkerGroupOptions: (o) => batchnorm.createWorkerGroup(1, o),
  JoinOptions: (o) => batchnorm.joinWorkerGroup(batchnorm.createWorkerGroup(1), 0, o),
};

/** The layers' results hold fresh random seeds or groups: compare only the functions' results. */
const COMPARED = ['ForwardTrainOptions', 'ForwardInferenceOptions', 'BackwardOptions', 'BatchMomentsOptions', 'BackwardSumsOptions', 'LayerForwardOptions', 'LayerBackwardOptions'];

describe.each(Object.entries(KEYS))('%s: null where the type has it, refused elsewhere', (name, { all, nullable }) => {
  const call = CALLS[name]!;
  test.each(all)('%s', (key) => {
    if (nullable.includes(key)) {
      const result = call({ [key]: null });
      if (COMPARED.includes(name)) expect(result).toEqual(call({}));
    } else {
      expect(() => call({ [key]: null })).toThrow(expect.objectContaining({ code: 'ERR_BATCHNORM_INVALID_TYPE' }));
    }
  });
});
