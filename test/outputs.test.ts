/**
 * Outputs the package allocates (lib/outputs.ts, issue 11): new arrays the caller owns, each on a
 * buffer of its own that no other array shares, fully written (they start uninitialised), the
 * same bits as with destinations, transferable to a worker. Runs on both backends.
 */
import { readFileSync } from 'fs';
import { Worker } from 'worker_threads';
import { describe, expect, test } from 'vitest';

import { backendInfo, backward, forwardInference, forwardTrain } from '../lib/index';
import { load } from '../lib/loader';
import { claimUnwritten, FRESH_MAPPING_BYTES, overwrittenOutput } from '../lib/outputs';
import { rng } from './helpers/random';
import { expectSameBits } from './helpers/reference';

const r = rng(5);
const shape = [3, 5, 7]; // odd sizes: SIMD tails everywhere
const n = 105;
const x = r.normals(n, 2, 3);
x[17] = NaN; // NaN propagates into its channel: the allocated y must carry the same bits
const dy = r.normals(n);
const gamma = r.normals(5, 1, 0.2);
const running = { runningMean: r.normals(5), runningVar: r.normals(5, 2, 0.1) };

/** Every output of one call of each op, allocated by the package. */
function allocatedOutputs() {
  const train = forwardTrain(x, shape, { gamma });
  const grads = backward(dy, x, shape, { gamma, saveMean: train.saveMean, saveInvStd: train.saveInvStd });
  const y = forwardInference(x, shape, { gamma, ...running });
  return { train, grads, y, all: [train.y, train.saveMean, train.saveInvStd, grads.dx, grads.dgamma, grads.dbeta, y] };
}

describe('allocated outputs', () => {
  test('each is a new array on a buffer of its own, and filling one changes no other', () => {
    const first = allocatedOutputs().all;
    const second = allocatedOutputs().all;
    const all = [...first, ...second, x, dy];
    const copies = all.map((a) => a.slice());
    for (const a of [...first, ...second]) {
      expect(a.byteOffset).toBe(0);
      expect(a.buffer.byteLength).toBe(a.byteLength);
    }
    expect(new Set(all.map((a) => a.buffer)).size).toBe(all.length);
    for (const [k, a] of [...first, ...second].entries()) {
      a.fill(12345);
      all.forEach((b, j) => {
        if (j !== k) expectSameBits(b, copies[j], `array ${j} after filling array ${k}`);
      });
      a.set(copies[k]);
    }
  });

  test('are fully written: the same bits as the same calls with destinations', () => {
    const { train, grads, y } = allocatedOutputs();
    const dest = { out: new Float32Array(n).fill(7), saveMean: new Float32Array(5), saveInvStd: new Float32Array(5) };
    forwardTrain(x, shape, { gamma, ...dest });
    expectSameBits(train.y, dest.out, 'forwardTrain y');
    const dx = new Float32Array(n).fill(7);
    backward(dy, x, shape, { gamma, saveMean: train.saveMean, saveInvStd: train.saveInvStd, dx });
    expectSameBits(grads.dx, dx, 'backward dx');
    const out = new Float32Array(n).fill(7);
    forwardInference(x, shape, { gamma, ...running, out });
    expectSameBits(y, out, 'forwardInference y');
  });

  test('new outputs from 128 KiB (written with streaming stores on the native backend): the same bits as with destinations, in both layouts', () => {
    // Just past 128 KiB: runs with odd inner (SIMD tails, pieces), and rows that fold with a remainder.
    for (const big of [[3, 7, 1601], [4099, 9]]) {
      const size = big.reduce((p, d) => p * d, 1);
      const C = big[1]!;
      const data = r.normals(size, 2, 3);
      const grad = r.normals(size);
      const train = forwardTrain(data, big, { activation: 'relu' });
      const dest = { out: new Float32Array(size).fill(7), saveMean: new Float32Array(C), saveInvStd: new Float32Array(C) };
      forwardTrain(data, big, { ...dest, activation: 'relu' });
      expectSameBits(train.y, dest.out, `forwardTrain y, [${big}]`);
      const saved = { saveMean: train.saveMean, saveInvStd: train.saveInvStd, activation: 'relu' as const, reluMask: train.reluMask };
      const grads = backward(grad, data, big, { ...saved, dresidual: true });
      const dx = new Float32Array(size).fill(7);
      const dresidual = new Float32Array(size).fill(7);
      backward(grad, data, big, { ...saved, dx, dresidual });
      expectSameBits(grads.dx, dx, `backward dx, [${big}]`);
      expectSameBits(grads.dresidual!, dresidual, `backward dresidual, [${big}]`);
      const stats = { runningMean: train.saveMean, runningVar: new Float32Array(C).fill(2) };
      const out = new Float32Array(size).fill(7);
      forwardInference(data, big, { ...stats, out });
      expectSameBits(forwardInference(data, big, stats), out, `forwardInference y, [${big}]`);
    }
  });

  test('an array from overwrittenOutput counts as unwritten once; any other array never', () => {
    const fresh = overwrittenOutput(40000, 'y');
    expect(claimUnwritten(fresh)).toBe(true);
    expect(claimUnwritten(fresh)).toBe(false);
    expect(claimUnwritten(new Float32Array(40000))).toBe(false);
    expect(claimUnwritten(null)).toBe(true);
    const { train } = allocatedOutputs(); // claimed by the call that wrote it (native), or never (JS)
    expect(claimUnwritten(train.y)).toBe(backendInfo().backend !== 'native');
  });

  test(`past ${FRESH_MAPPING_BYTES / 2 ** 20} MiB (fresh mappings, huge pages advised): the same bits as with a destination`, () => {
    const big = [2, 3, Math.ceil(FRESH_MAPPING_BYTES / 4 / 6) + 5]; // just past the threshold, odd inner
    const size = big[0] * big[1] * big[2];
    const data = new Float32Array(size);
    for (let i = 0; i < size; i += 97) data[i] = i % 13;
    const stats = { runningMean: new Float32Array(3), runningVar: new Float32Array(3).fill(1) };
    const y = forwardInference(data, big, stats);
    const out = new Float32Array(size).fill(7);
    forwardInference(data, big, { ...stats, out });
    expect(y.buffer.byteLength).toBe(size * 4);
    expectSameBits(y, out, 'y');
  });

  test.runIf(backendInfo().backend === 'native')("the addon's large blocks: whole ArrayBuffers, transferable, huge pages advised where Linux offers them", () => {
    const { native } = load();
    const bytes = FRESH_MAPPING_BYTES + 4 * 2 ** 20;
    const block = native!.allocateOutput(bytes);
    expect(block).toBeInstanceOf(ArrayBuffer);
    expect(block.byteLength).toBe(bytes);
    new Float32Array(block).fill(3); // writable through its whole length
    if (process.platform === 'linux' && !readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').includes('[never]')) {
      // madvise marks the block's whole 2 MiB pages: a mapping of at least bytes - 4 MiB flagged "hg"
      const flagged = readFileSync('/proc/self/smaps', 'utf8')
        .split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)
        .filter((vma) => /\nVmFlags:.* hg/.test(vma))
        .map((vma) => Number(/\nSize:\s+(\d+) kB/.exec(vma)![1]) * 1024);
      expect(Math.max(0, ...flagged)).toBeGreaterThanOrEqual(bytes - 4 * 2 ** 20);
    }
    const moved = structuredClone(block, { transfer: [block] });
    expect(block.byteLength).toBe(0);
    expect(new Float32Array(moved)[12345]).toBe(3);
    expect(() => native!.allocateOutput(-1)).toThrow(/non-negative integer/);
    expect(() => native!.allocateOutput('8' as unknown as number)).toThrow(TypeError);
  });

  test('can be transferred to a worker, which reads them; the sender is left detached', async () => {
    const { train } = allocatedOutputs();
    const expected = train.y.reduce((s, v) => (Number.isNaN(v) ? s : s + v), 0);
    const worker = new Worker(
      `const { parentPort } = require('worker_threads');
       parentPort.once('message', (y) => parentPort.postMessage(y.reduce((s, v) => (Number.isNaN(v) ? s : s + v), 0)));`,
      { eval: true },
    );
    const sum = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.postMessage(train.y, [train.y.buffer as ArrayBuffer]);
    });
    await worker.terminate();
    expect(sum).toBe(expected);
    expect(train.y.length).toBe(0);
    const cloned = structuredClone(train.saveMean, { transfer: [train.saveMean.buffer as ArrayBuffer] });
    expect(cloned.length).toBe(5);
  });
});
