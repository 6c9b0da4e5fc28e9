/**
 * Buffers whose memory can change under a call. A resizable ArrayBuffer can shrink (its pages
 * decommitted) while an async call computes on it, so every call rejects it; growable
 * SharedArrayBuffers only ever grow, in place, and work. (Detaching a buffer while an async call
 * uses it cannot be prevented through N-API: README, "Async calls".)
 */
import { describe, expect, test } from 'vitest';

import { forwardTrain, forwardTrainAsync } from '../lib/index';
import { cleanExit, runChild } from './helpers/child';
import { rng } from './helpers/random';
import { expectSameBits } from './helpers/reference';

// The ES2024 constructors with maxByteLength (Node 20 has them; this TypeScript lib does not).
type GrowableOptions = { maxByteLength: number };
const ResizableArrayBuffer = ArrayBuffer as unknown as new (bytes: number, options: GrowableOptions) => ArrayBuffer;
const GrowableSharedArrayBuffer = SharedArrayBuffer as unknown as new (bytes: number, options: GrowableOptions) => SharedArrayBuffer;

const shape = [4, 3, 10];
const x = rng(5).normals(120, 2, 3);

describe('resizable ArrayBuffers are rejected', () => {
  const resizable = () => {
    const buffer = new ResizableArrayBuffer(4 * 120, { maxByteLength: 4 * 240 });
    new Float32Array(buffer).set(x);
    return buffer;
  };
  const views = {
    'a length-tracking view': () => new Float32Array(resizable()),
    'a fixed-length view': () => new Float32Array(resizable(), 0, 120),
  };

  test.each(Object.keys(views))('%s, sync and async', async (name) => {
    const view = views[name as keyof typeof views]();
    const expected = { name: 'TypeError', code: 'ERR_BATCHNORM_INVALID_TYPE', message: expect.stringContaining('resizable') };
    expect(() => forwardTrain(view, shape)).toThrow(expect.objectContaining(expected));
    expect(() => forwardTrain(x, shape, { out: view })).toThrow(expect.objectContaining(expected));
    await expect(forwardTrainAsync(view, shape)).rejects.toThrow(expect.objectContaining(expected));
  });

  test('shrinking one right after an async call cannot crash the process', () => {
    const outcomes = cleanExit<string[]>(runChild('shrink.js'));
    expect(outcomes).toEqual(Array(64).fill('TypeError ERR_BATCHNORM_INVALID_TYPE'));
  });
});

test('growable SharedArrayBuffers work, through length-tracking views', async () => {
  const buffer = new GrowableSharedArrayBuffer(4 * 120, { maxByteLength: 4 * 240 });
  const view = new Float32Array(buffer);
  view.set(x);
  const expected = forwardTrain(x, shape);
  expectSameBits(forwardTrain(view, shape).y, expected.y, 'sync y');
  expectSameBits((await forwardTrainAsync(view, shape)).y, expected.y, 'async y');
});
