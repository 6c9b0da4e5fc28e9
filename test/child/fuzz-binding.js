'use strict';
// Fuzzes the raw addon, bypassing lib/'s validation (the binary the package loads, found by
// dist/loader.js; BATCHNORM_BINARY points it at another build). Each round builds a valid raw
// call, then replaces 0 to 3 arguments with hostile values (fuzz-hostile.js), reshapes its
// geometry, aliases a written array onto another argument, or drops or adds arguments; it is
// made sync and async. configure, info, setNumThreads, allocateOutput and releaseFreedMemory get hostile calls
// too (valid configure calls switch the kernels' ISA, so every ISA is fuzzed). fuzz-harness.js judges every outcome.
// Usage: node fuzz-binding.js <rounds> <seed>
const { join } = require('path');

const { native } = require(join(__dirname, '..', '..', 'dist', 'loader.js')).load();
const hostile = require('./fuzz-hostile');
const { fuzz } = require('./fuzz-harness');

// Argument lists of native/src/binding.cpp: name:kind, where kind is n (an array like x), C (a
// per-channel array), C64 (a per-channel Float64Array), count (a geometry count), total (values
// per channel of a whole batch), mask (the ReLU mask, ceil(n / 8) bytes), number or boolean; '?'
// marks what may be null. The fused arguments of SPEC section 7 come last.
const OPS = {
  forwardTrain: ['x:n', 'outer:count', 'channels:count', 'inner:count', 'y:n', 'gamma:C?', 'beta:C?', 'eps:number', 'momentum:number', 'runningMean:C?', 'runningVar:C?', 'unbiased:boolean', 'saveMean:C', 'saveInvStd:C',
    'momentsCount:total', 'momentsMean:C64?', 'momentsM2:C64?', 'relu:boolean', 'residual:n?', 'reluMask:mask?'],
  forwardInference: ['x:n', 'outer:count', 'channels:count', 'inner:count', 'y:n', 'gamma:C?', 'beta:C?', 'eps:number', 'runningMean:C', 'runningVar:C', 'relu:boolean', 'residual:n?'],
  backward: ['dy:n', 'x:n', 'outer:count', 'channels:count', 'inner:count', 'dx:n', 'gamma:C?', 'saveMean:C', 'saveInvStd:C', 'useGlobalStats:boolean', 'dgamma:C', 'dbeta:C',
    'totalCount:total', 'totalSumDy:C64?', 'totalSumDyXmu:C64?', 'ownSumDy:C64?', 'ownSumDyXmu:C64?', 'reluMask:mask?', 'dresidual:n?'],
  batchMoments: ['x:n', 'outer:count', 'channels:count', 'inner:count', 'mean:C64', 'm2:C64'],
  backwardSums: ['dy:n', 'x:n', 'outer:count', 'channels:count', 'inner:count', 'saveMean:C', 'sumDy:C64', 'sumDyXmu:C64', 'reluMask:mask?'],
};
const WRITTEN = ['y', 'runningMean', 'runningVar', 'saveMean', 'saveInvStd', 'dx', 'dgamma', 'dbeta', 'mean', 'm2', 'sumDy', 'sumDyXmu', 'reluMask', 'dresidual'];
const VALID = { eps: 1e-3, momentum: 0.1, unbiased: true, useGlobalStats: false, relu: false };
const ISAS = ['', 'avx512', 'avx2', 'neon', 'scalar', 'sse9', 'AVX2'];

const params = (name) => OPS[name].map((p) => {
  const [param, kind] = p.split(':');
  return { param, kind: kind.replace('?', ''), optional: kind.endsWith('?') };
});

/** `len` values in [-2, 2), in a buffer with a spare float on each side (room for overlapping views). */
function data(r, len) {
  const a = new Float32Array(new ArrayBuffer(4 * (len + 2)), 4, len);
  for (let i = 0; i < len; i++) a[i] = r.next() * 4 - 2;
  return a;
}

/** A valid call: geometry for both loop shapes (short inner as rows, long inner as runs and pieces). */
function validCall(r, name) {
  const geometry = { outer: r.int(1, 5), channels: r.int(1, 6), inner: r.pick([1, 2, 7, 63, 64, 100, 2100]) };
  const n = geometry.outer * geometry.channels * geometry.inner;
  const relu = r.chance(0.5); // forwardTrain: a mask exactly with relu
  const args = params(name).map(({ param, kind, optional }) => {
    if (kind === 'count') return geometry[param];
    if (kind === 'total') return Math.max(2, geometry.outer * geometry.inner) + r.int(0, 3);
    if (param === 'relu') return relu;
    if (kind === 'number' || kind === 'boolean') return VALID[param];
    if (kind === 'mask') return (name === 'forwardTrain' ? relu : r.chance(0.5)) ? Uint8Array.from({ length: Math.ceil(n / 8) }, () => r.int(0, 255)) : null;
    if (optional && r.chance(0.3)) return null;
    if (kind === 'C64') return Float64Array.from(data(r, geometry.channels), Math.abs);
    return kind === 'n' ? data(r, n) : Float32Array.from(data(r, geometry.channels), Math.abs);
  });
  return { name, args, n, C: geometry.channels, padded: args[0] };
}

const indexOf = (call, param) => params(call.name).findIndex((p) => p.param === param);

/** Rewrites the geometry arguments; some rewrites keep the product, none keeps every length. */
function regeometry(r, call) {
  const [label, dims] = r.pick([
    ['everything in outer', [call.n, 1, 1]],
    ['outer and inner swapped', [call.args[indexOf(call, 'inner')], call.C, call.args[indexOf(call, 'outer')]]],
    ['2^53 each', [2 ** 53, 2 ** 53, 2 ** 53]],
    ['product past int64', [2 ** 32, 2 ** 32, 2 ** 32]],
    ['product 2^64 + n', [2 ** 32, 2 ** 32, 1]],
    ['zero channels, huge outer and inner', [2 ** 40, 0, 2 ** 40]],
  ]);
  ['outer', 'channels', 'inner'].forEach((p, k) => (call.args[indexOf(call, p)] = dims[k]));
  return `geometry: ${label}`;
}

/** Every array argument emptied, with zero channels and huge outer and inner: a valid call. */
function emptyHuge(call) {
  params(call.name).forEach(({ kind }, i) => {
    if (kind === 'n' || kind === 'C') call.args[i] = new Float32Array(0);
    if (kind === 'C64' && call.args[i] !== null) call.args[i] = new Float64Array(0);
    if (kind === 'mask' && call.args[i]) call.args[i] = new Uint8Array(0);
  });
  ['outer', 'channels', 'inner'].forEach((p, k) => (call.args[indexOf(call, p)] = [2 ** 33 + 1, 0, 2 ** 31][k]));
  return 'empty, zero channels, outer * inner past 2^63';
}

function alias(r, call) {
  const written = params(call.name).map((p, i) => [p.param, i]).filter(([p]) => WRITTEN.includes(p));
  const [param, at] = r.pick(written);
  const source = call.padded; // the valid first array, with room for a shifted view
  const [label, make] = r.pick([
    ['a mask-sized byte view into the first array', () => new Uint8Array(source.buffer, source.byteOffset + 1, Math.ceil(source.length / 8))],
    ['the first array', () => source],
    ['an identical view of the first array', () => new Float32Array(source.buffer, source.byteOffset, source.length)],
    ['a view of the first array shifted by one float', () => new Float32Array(source.buffer, source.byteOffset + 4, source.length)],
    ['another written array', () => call.args[r.pick(written)[1]]],
    ['x', () => call.args[indexOf(call, 'x')]],
    ["a Float64Array over the first array's bytes", () => new Float64Array(source.buffer, 8, Math.min(call.C, (source.buffer.byteLength - 8) >> 3))],
  ]);
  call.args[at] = make();
  return `${param}: alias, ${label}`;
}

/** One hostile change to `call`; returns its label. */
function mutate(r, call) {
  const what = r.pick(['argument', 'argument', 'argument', 'any type', 'geometry', 'alias', 'arity', 'empty']);
  if (what === 'geometry') return regeometry(r, call);
  if (what === 'alias') return alias(r, call);
  if (what === 'empty') return emptyHuge(call);
  if (what === 'arity') {
    const keep = r.int(0, call.args.length + 2);
    call.args = keep <= call.args.length ? call.args.slice(0, keep) : [...call.args, 1, null];
    return `${keep} arguments`;
  }
  const at = r.int(0, params(call.name).length - 1);
  const { param, kind } = params(call.name)[at];
  const lists = {
    n: () => hostile.arrays(call.n),
    C: () => hostile.arrays(call.C),
    C64: () => hostile.arrays64(call.C),
    mask: () => hostile.masks(Math.ceil(call.n / 8)),
    count: hostile.numbers,
    total: hostile.numbers,
    number: hostile.numbers,
    boolean: hostile.booleans,
  };
  const list = what === 'any type' ? [...hostile.arrays(call.n), ...hostile.masks(Math.ceil(call.n / 8)), ...hostile.numbers(), ...hostile.booleans()] : lists[kind]();
  const [label, make] = r.pick(list);
  call.args[at] = make();
  return `${param}: ${label}`;
}

const returnsNothing = (v) => (v === undefined ? null : `returned ${typeof v}`);
const returnsInfo = (v) => (v && typeof v.isa === 'string' ? null : 'returned no info');
const returnsBoolean = (v) => (typeof v === 'boolean' ? null : `returned ${typeof v}`);
const returnsArrayBuffer = (v) => (v instanceof ArrayBuffer ? null : `returned ${typeof v}`);

function controlCalls(r) {
  const [label, make] = r.pick(hostile.numbers());
  const isa = r.chance(0.8) ? r.pick(ISAS) : make();
  const threads = r.chance(0.7) ? r.int(1, 4) : make();
  // Sizes past 32 MiB too (a heap block, huge pages advised), and 2^53 (no such buffer).
  const bytes = r.pick([...hostile.numbers(), ...[0, 7, 3 << 20, 40 << 20, 2 ** 53].map((b) => [String(b), () => b])]);
  return [
    { label: `configure(${String(isa)}, ${label})`, run: () => native.configure(isa, threads), check: returnsInfo },
    { label: `setNumThreads(${label})`, run: () => native.setNumThreads(make()), check: returnsNothing },
    { label: 'info()', run: () => native.info(), check: returnsInfo },
    { label: `allocateOutput(${bytes[0]})`, run: () => native.allocateOutput(bytes[1]()), check: returnsArrayBuffer },
    { label: `releaseFreedMemory(${label})`, run: () => native.releaseFreedMemory(make()), check: returnsBoolean },
  ];
}

function makeCalls(r, round) {
  const name = r.pick(Object.keys(OPS));
  const call = validCall(r, name);
  const labels = Array.from({ length: r.pick([0, 1, 1, 2, 3]) }, () => mutate(r, call));
  const label = `round ${round}, ${name}(${labels.join('; ') || 'valid'})`;
  const { args } = call;
  return [
    { label, run: () => native[name](...args), check: returnsNothing },
    { label: `${label} async`, run: () => native[`${name}Async`](...args), check: returnsNothing },
    ...(round % 10 === 0 ? controlCalls(r) : []),
  ];
}

fuzz(Number(process.argv[2] || 2000), Number(process.argv[3] || 1), makeCalls);
