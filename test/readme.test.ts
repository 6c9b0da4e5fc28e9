/**
 * The README's TypeScript examples compile and run. Every ```ts block is type-checked against
 * the package's public types as a user imports them ('batchnorm', 'batchnorm/tfjs'), and those
 * that can run here are run. A block that is a fragment (its variables defined in the prose or
 * an earlier block) gets a prelude below that defines them, kept minimal; an epilogue checks
 * what the block's comments promise where that is cheap to check.
 */
import * as tf from '@tensorflow/tfjs';
import * as tfjsWasm from '@tensorflow/tfjs-backend-wasm';
import * as vitest from 'vitest';
import { describe, expect, test } from 'vitest';

import * as batchnorm from '../lib/index';
import * as batchnormTfjs from '../lib/tfjs/index';
import { readmeSnippets, runModule, typeCheck, type Snippet } from './helpers/readme-snippets';

interface Harness {
  /** TypeScript put before the block: imports and definitions the block takes from its context. */
  prelude?: string;
  /** TypeScript put after the block: checks of what its comments say. */
  epilogue?: string;
  /** Why the block is only type-checked (it needs worker scripts, child processes, a server). */
  compileOnly?: string;
}

/** A Float32Array of n deterministic values sin(k * i + 0.5): varied, with nonzero variance. */
const data = (name: string, n: string, k: number) =>
  `const ${name} = new Float32Array(${n}); for (let i = 0; i < ${name}.length; i++) ${name}[i] = Math.sin(${k} * i + 0.5);`;

/** Per README heading (each has one ```ts block). */
const HARNESS: Record<string, Harness> = {
  Usage: {
    epilogue: `
      import { expect } from 'vitest';
      expect([y.length, dx.length, out.length, dgamma.length, dbeta.length]).toEqual([x.length, x.length, nhwc.length, 64, 64]);
      expect(runningVar[0]).toBeCloseTo(0.9); // zero data: the batch variance 0 moved it by momentum`,
  },
  'Fused ReLU and residual add': {
    prelude: `
      const shape = [4, 64, 3, 3];
      ${data('x', '4 * 64 * 9', 1)}
      ${data('z', 'x.length', 2)}
      ${data('dy', 'x.length', 3)}
      ${data('dout', 'x.length', 4)}
      const gamma = new Float32Array(64).fill(1);
      const beta = new Float32Array(64);
      const runningMean = new Float32Array(64);
      const runningVar = new Float32Array(64).fill(1);`,
    epilogue: `
      import { expect } from 'vitest';
      for (let i = 0; i < y.length; i++) expect(dresidual![i]).toBe((reluMask![i >> 3] >> (i & 7)) & 1 ? dy[i] : 0);
      expect([dx.length, dgamma.length, dbeta.length, out.length, dxLayer.length]).toEqual([x.length, 64, 64, x.length, x.length]);
      expect(dz.some((v) => v !== 0)).toBe(true);`,
  },
  'Training pipelines: the BatchNorm layer': {
    prelude: `
      ${data('x', '32 * 64 * 56 * 56', 1)}
      ${data('dy', 'x.length', 2)}
      function sgdStep(value: Float32Array, grad: Float32Array) {
        for (let i = 0; i < value.length; i++) value[i] -= 0.1 * grad[i];
      }`,
    epilogue: `
      import { expect } from 'vitest';
      expect([y.length, dx.length, out.length]).toEqual([x.length, x.length, x.length]);
      expect(bn.gradGamma!.every((g) => g === 0)).toBe(true);
      expect([k.axis, k.momentum, k.eps]).toEqual([-1, 1 - 0.99, 1e-3]);`,
  },
  Buffers: {
    prelude: `
      import { BatchNorm } from 'batchnorm';
      const shape = [4, 64, 3, 3];
      const batches = [1, 2, 3].map((k) => Float32Array.from({ length: 4 * 64 * 9 }, (_, i) => Math.sin(k * i)));
      const dyOf = (y: Float32Array) => y.map((v) => 2 * v); // a loss's gradient`,
  },
  'Folding for inference': {
    prelude: `
      import { BatchNorm } from 'batchnorm';
      const bn = new BatchNorm(64);
      bn.eval();
      ${data('convWeight', '64 * 3 * 3 * 3', 1)}
      ${data('convBias', '64', 2)}
      ${data('fcWeight', '10 * 64', 3)}
      ${data('fcBias', '10', 4)}`,
    epilogue: `
      import { expect } from 'vitest';
      expect(fused.shape).toEqual([64, 3, 3, 3]);
      expect(fused2.shape).toEqual([10, 64]);`,
  },
  'Network slimming': {
    prelude: `
      import { BatchNorm } from 'batchnorm';
      const [bn1, bn2] = [new BatchNorm(16), new BatchNorm(16)];
      bn1.gamma!.set(Float32Array.from({ length: 16 }, (_, i) => Math.sin(i)));
      bn2.gamma!.set(Float32Array.from({ length: 16 }, (_, i) => Math.cos(i)));
      const dense1 = { weight: new Float32Array(16 * 8), shape: [16, 8], bias: new Float32Array(16) };
      const dense2 = { weight: new Float32Array(4 * 16), shape: [4, 16], bias: new Float32Array(4) };`,
    epilogue: `
      import { expect } from 'vitest';
      expect(layer.numFeatures).toBe(kept.length);
      expect(producer.shape).toEqual([kept.length, 8]);
      expect(consumer.shape).toEqual([4, kept.length]);`,
  },
  'The layer': {
    prelude: `
      import { BatchNorm, createWorkerGroup, joinWorkerGroup } from 'batchnorm';
      const collective = joinWorkerGroup(createWorkerGroup(1), 0); // a group of one replica
      ${data('xShard', '16 * 64 * 56 * 56', 1)}
      ${data('dyShard', 'xShard.length', 2)}`,
  },
  'Worker threads': { compileOnly: 'it starts workers from ./worker.js' },
  'Child processes: npm run example:data-parallel': {
    prelude: `
      import { fork } from 'child_process';
      import { BatchNorm, joinIpcGroup, serveIpcGroup } from 'batchnorm';`,
    compileOnly: 'it forks replica.js',
  },
  'Other transports (gRPC, ZeroMQ, ...)': {
    // zeromq v6's Router and Dealer, as far as the sketch uses them.
    prelude: `
      import { ReductionHub, RemoteCollective } from 'batchnorm';
      declare class Socket implements AsyncIterable<Buffer[]> {
        send(message: (Buffer | string)[]): Promise<void>;
        [Symbol.asyncIterator](): AsyncIterator<Buffer[]>;
      }
      declare class Router extends Socket { bind(address: string): Promise<void>; }
      declare class Dealer extends Socket { connect(address: string): void; }
      declare const size: number, rank: number;`,
    compileOnly: 'it needs a ZeroMQ coordinator',
  },
  'The functions underneath': {
    prelude: `
      import { backward, backwardSums, batchMoments, forwardTrain, mergeMoments } from 'batchnorm';
      const shape = [6, 4, 5];
      const axis = 1;
      ${data('x', '6 * 4 * 5', 1)}
      ${data('dy', 'x.length', 2)}
      const gamma = new Float32Array(4).fill(1.5);
      const beta = new Float32Array(4).fill(0.5);
      const [runningMean, runningVar] = [new Float32Array(4), new Float32Array(4).fill(1)];
      // One replica: every replica's moments are its own, the totals its own sums.
      const allReplicasMoments = [batchMoments(x, shape, { axis })];
      const plain = forwardTrain(x, shape, { axis, gamma, beta });
      const { sumDy: totalSumDy, sumDyXmu: totalSumDyXmu } = backwardSums(dy, x, shape, { axis, saveMean: plain.saveMean });`,
    epilogue: `
      import { expect } from 'vitest';
      // "With a single replica ... give the bits of the plain calls."
      const plainGrads = backward(dy, x, shape, { gamma, saveMean: plain.saveMean, saveInvStd: plain.saveInvStd });
      expect([y, saveMean, saveInvStd]).toEqual([plain.y, plain.saveMean, plain.saveInvStd]);
      expect([dx, dgamma, dbeta]).toEqual([plainGrads.dx, plainGrads.dgamma, plainGrads.dbeta]);
      expect(own.count).toBe(30);
      expect(mine.count).toBe(30);`,
  },
  'TensorFlow.js': {
    epilogue: `
      import { expect } from 'vitest';
      expect(install()).toEqual({ backends: ['cpu', 'wasm'], layers: true }); // as the block's comment says
      uninstall();`,
  },
};

/** What the examples import, bound to the modules this test loaded (the same instances as lib/'s). */
const MODULES: Record<string, unknown> = {
  batchnorm,
  'batchnorm/tfjs': batchnormTfjs,
  '@tensorflow/tfjs': tf,
  '@tensorflow/tfjs-backend-wasm': tfjsWasm,
  vitest,
};

const snippets = readmeSnippets();
const fileOf = (s: Snippet) => `readme-${s.line}.ts`;

/** The block with its prelude and epilogue, and where the block's own lines start in it. */
function assemble(s: Snippet): { source: string; firstLine: number } {
  const h = HARNESS[s.heading];
  const prelude = h?.prelude ? `${h.prelude}\n` : '';
  const epilogue = h?.epilogue ? `\n${h.epilogue}` : '';
  return { source: `${prelude}${s.code}${epilogue}\nexport {};\n`, firstLine: prelude.split('\n').length };
}

describe('README.md', () => {
  test('every ts block has a harness entry, and every entry a block', () => {
    expect(snippets.map((s) => s.heading).sort()).toEqual(Object.keys(HARNESS).sort());
  });

  test('every ts block type-checks against the public types', () => {
    const assembled = new Map(snippets.map((s) => [fileOf(s), { s, ...assemble(s) }]));
    const diagnostics = typeCheck(new Map([...assembled].map(([name, a]) => [name, a.source])));
    // Report a block's own lines as README lines.
    const readable = diagnostics.map((d) => {
      const m = /^test\/\.readme\/(readme-\d+\.ts):(\d+):(\d+) ([\s\S]*)$/.exec(d);
      const a = m && assembled.get(m[1]);
      if (!m || !a) return d;
      const inBlock = Number(m[2]) - a.firstLine;
      const where = inBlock >= 0 && inBlock < a.s.code.split('\n').length ? `README.md:${a.s.line + 1 + inBlock}` : `${m[1]} (harness) line ${m[2]}`;
      return `${where}:${m[3]} ${m[4]}`;
    });
    expect(readable).toEqual([]);
  }, 120_000);

  for (const s of snippets) {
    const why = HARNESS[s.heading]?.compileOnly;
    test.skipIf(why !== undefined)(`runs the block under "${s.heading}" (README.md:${s.line})${why ? `: compile only, ${why}` : ''}`, async () => {
      await runModule(assemble(s).source, MODULES);
    }, 60_000);
  }
});
