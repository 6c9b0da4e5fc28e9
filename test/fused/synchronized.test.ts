/**
 * SPEC section 8 with section 7's fusion: backwardSums with the ReLU mask gives the sums of the
 * masked gradient (bit for bit those of backwardSums on g itself), and replicas of a BatchNorm +
 * ReLU layer with a residual, synchronized through a collective, behave as one layer on the
 * whole batch (y, dx, dresidual; gradients adding up). Runs once per backend and ISA.
 */
import { describe, expect, test } from 'vitest';

import { BatchNorm, backward, backwardSums, forwardTrain } from '../../lib/index';
import { maskGradient } from '../helpers/fused-reference';
import { rng } from '../helpers/random';
import { expectElementwise, expectSameBits } from '../helpers/reference';
import { concat, memoryGroup, shards } from '../helpers/replicas';

const r = rng(77);

describe.each([
  { shape: [6, 5, 14, 14], axis: 1 },
  { shape: [37, 11], axis: 1 },
  { shape: [4, 7, 7, 6], axis: -1 },
])('$shape axis $axis', ({ shape, axis }) => {
  const n = shape.reduce((p, d) => p * d, 1);
  const x = r.normals(n, 1, 2);
  const z = r.normals(n);
  const dy = r.normals(n);

  test('backwardSums with the mask: the sums of g = mask ? dy : 0, bit for bit', () => {
    const f = forwardTrain(x, shape, { axis, activation: 'relu', residual: z });
    const masked = backwardSums(dy, x, shape, { axis, saveMean: f.saveMean, activation: 'relu', reluMask: f.reluMask });
    const plain = backwardSums(maskGradient(dy, f.reluMask), x, shape, { axis, saveMean: f.saveMean });
    expect(masked.count).toBe(plain.count);
    expect(masked.sumDy).toEqual(plain.sumDy);
    expect(masked.sumDyXmu).toEqual(plain.sumDyXmu);
  });

  test('backward with the whole batch as its own sums equals the unsynchronized backward', () => {
    const f = forwardTrain(x, shape, { axis, activation: 'relu' });
    const stats = { axis, saveMean: f.saveMean, saveInvStd: f.saveInvStd, activation: 'relu' as const, reluMask: f.reluMask };
    const own = backwardSums(dy, x, shape, stats);
    const synced = backward(dy, x, shape, { ...stats, sums: own, localSums: own, dresidual: true });
    const plain = backward(dy, x, shape, { ...stats, dresidual: true });
    expectElementwise(synced.dx, Float64Array.from(plain.dx), 'dx');
    expectSameBits(synced.dresidual, plain.dresidual, 'dresidual');
    expectSameBits(synced.dbeta, plain.dbeta, 'dbeta');
  });
});

test('replicas of a BatchNorm + ReLU layer with a residual behave as one layer on the whole batch', async () => {
  const shape = [10, 4, 6, 6];
  const rows = [3, 7, 0];
  const n = 10 * 4 * 36;
  const single = new BatchNorm(4, { activation: 'relu', gammaInit: 'normal', seed: 5 });
  single.beta!.set(r.normals(4));
  const replicas = memoryGroup(rows.length).map((collective) => {
    const layer = new BatchNorm(4, { activation: 'relu', collective });
    layer.loadStateDict(single.stateDict());
    return layer;
  });
  for (let step = 0; step < 2; step++) {
    const x = r.normals(n, step, 2);
    const z = r.normals(n);
    const dy = r.normals(n);
    const parts = shards(x, dy, shape, rows);
    const residuals = shards(z, z, shape, rows);
    const y = await Promise.all(replicas.map((layer, k) => layer.forwardAsync(parts[k]!.x, parts[k]!.shape, { residual: residuals[k]!.x })));
    const dresidual = parts.map((p) => new Float32Array(p.x.length));
    const dx = await Promise.all(replicas.map((layer, k) => layer.backwardAsync(parts[k]!.dy, { dresidual: dresidual[k] })));
    const wantY = single.forward(x, shape, { residual: z });
    const wantDresidual = new Float32Array(n);
    const wantDx = single.backward(dy, { dresidual: wantDresidual });
    expectElementwise(concat(y), Float64Array.from(wantY), `step ${step} y`);
    expectElementwise(concat(dx), Float64Array.from(wantDx), `step ${step} dx`);
    // Each replica's mask is the sign of its own y, which may differ from the single layer's
    // only where y is within rounding of 0: dresidual is dy there or 0.
    const got = concat(dresidual);
    for (let i = 0; i < n; i++) {
      if (got[i] !== wantDresidual[i] && Math.abs(wantY[i]!) > 1e-5) expect.fail(`step ${step} dresidual[${i}]: ${got[i]} vs ${wantDresidual[i]}`);
    }
  }
  for (const layer of replicas) expectSameBits(layer.runningVar!, replicas[0]!.runningVar!, 'runningVar on every replica');
});
