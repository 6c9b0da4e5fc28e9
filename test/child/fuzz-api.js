'use strict';
// Fuzzes the public API as users load it (dist/; the backend follows BATCHNORM_BACKEND): each
// round builds a valid call of one operation, replaces 0 to 3 of its arguments or options (or a
// field of an option object such as `moments`) with hostile values (fuzz-hostile.js) or aliases
// an output onto another argument, and makes it sync and async; setNumThreads, backendInfo and
// mergeMoments get hostile calls too. fuzz-harness.js judges every outcome.
// Usage: node fuzz-api.js <rounds> <seed>
const { join } = require('path');

const bn = require(join(__dirname, '..', '..'));
const hostile = require('./fuzz-hostile');
const { fuzz } = require('./fuzz-harness');

/** A typed array of any realm (a destination given from another realm is returned as is). */
const isTyped = (tag) => (v) => ArrayBuffer.isView(v) && Object.prototype.toString.call(v) === `[object ${tag}]`;
const isF32 = isTyped('Float32Array');
const isF64 = isTyped('Float64Array');
const isU8 = isTyped('Uint8Array');
const isMoments = (v) => v && typeof v.count === 'number' && isF64(v.mean) && isF64(v.m2);
/** Optional results (SPEC section 7) are absent or of the right type. */
const optional = (v, is) => v === undefined || is(v);

// Each option's kind: 'C' a per-channel array, 'C64' a per-channel Float64Array, 'n' an array
// like x, an object of SPEC section 8 ('moments', 'sums', 'localSums'), SPEC section 7's 'mask'
// (the ReLU mask), 'dresidual' (an array like x or true) and 'activation', or a number or
// boolean. The fused options are set by fuse(), so that valid calls stay coherent (a mask
// exactly with relu).
const OPS = {
  forwardTrain: {
    data: ['x'],
    options: { axis: 'number', gamma: 'C', beta: 'C', eps: 'number', momentum: 'number', runningMean: 'C', runningVar: 'C', unbiased: 'boolean', out: 'n', saveMean: 'C', saveInvStd: 'C', moments: 'moments', activation: 'activation', residual: 'n', reluMask: 'mask' },
    required: [],
    check: (v) => v && isF32(v.y) && isF32(v.saveMean) && isF32(v.saveInvStd) && optional(v.reluMask, isU8),
  },
  forwardInference: {
    data: ['x'],
    options: { axis: 'number', gamma: 'C', beta: 'C', eps: 'number', runningMean: 'C', runningVar: 'C', out: 'n', activation: 'activation', residual: 'n' },
    required: ['runningMean', 'runningVar'],
    check: (v) => isF32(v),
  },
  backward: {
    data: ['dy', 'x'],
    options: { axis: 'number', gamma: 'C', beta: 'C', saveMean: 'C', saveInvStd: 'C', useGlobalStats: 'boolean', dx: 'n', dgamma: 'C', dbeta: 'C', sums: 'sums', localSums: 'localSums', activation: 'activation', reluMask: 'mask', dresidual: 'dresidual' },
    required: ['saveMean', 'saveInvStd'],
    check: (v) => v && isF32(v.dx) && isF32(v.dgamma) && isF32(v.dbeta) && optional(v.dresidual, isF32),
  },
  batchMoments: {
    data: ['x'],
    options: { axis: 'number', mean: 'C64', m2: 'C64' },
    required: [],
    check: isMoments,
  },
  backwardSums: {
    data: ['dy', 'x'],
    options: { axis: 'number', saveMean: 'C', sumDy: 'C64', sumDyXmu: 'C64', activation: 'activation', reluMask: 'mask' },
    required: ['saveMean'],
    check: (v) => v && typeof v.count === 'number' && isF64(v.sumDy) && isF64(v.sumDyXmu),
  },
};
const OUTPUTS = ['out', 'saveMean', 'saveInvStd', 'runningMean', 'runningVar', 'dx', 'dgamma', 'dbeta', 'mean', 'm2', 'sumDy', 'sumDyXmu', 'reluMask', 'dresidual'];
const FUSED = ['activation', 'residual', 'reluMask', 'dresidual'];
// The fields of the option objects of SPEC section 8, and their kinds.
const OBJECT_FIELDS = {
  moments: { count: 'count', mean: 'C64', m2: 'C64' },
  sums: { count: 'count', sumDy: 'C64', sumDyXmu: 'C64' },
  localSums: { sumDy: 'C64', sumDyXmu: 'C64' },
};
const VALID = { eps: 1e-3, momentum: 0.1, unbiased: false, useGlobalStats: false };

/** `len` values in [-2, 2), in a buffer with a spare float on each side (room for overlapping views). */
function data(r, len) {
  const a = new Float32Array(new ArrayBuffer(4 * (len + 2)), 4, len);
  for (let i = 0; i < len; i++) a[i] = r.next() * 4 - 2;
  return a;
}

/** A Float64Array of `len` values in [0, 4). */
const data64 = (r, len) => Float64Array.from({ length: len }, () => r.next() * 4);

/** A valid value of an option of `kind` for C channels and M values per channel. */
function validOption(r, kind, key, C, M, n) {
  if (kind === 'C') return Float32Array.from(data(r, C), Math.abs);
  if (kind === 'C64') return data64(r, C);
  if (kind === 'n') return new Float32Array(n);
  if (kind in OBJECT_FIELDS) {
    const count = Math.max(2, M) + r.int(0, 3); // the whole batch covers this one
    return Object.fromEntries(Object.entries(OBJECT_FIELDS[kind]).map(([field, k]) => [field, k === 'count' ? count : data64(r, C)]));
  }
  return VALID[key];
}

/** A valid call: a small random shape and axis, and a random subset of the options. */
function validCall(r, name) {
  const op = OPS[name];
  const rank = r.int(2, 4);
  const shape = Array.from({ length: rank }, () => r.int(1, 5));
  shape[0] = r.int(name === 'batchMoments' ? 0 : 2, 6); // more than one value per channel, mostly
  const axis = r.int(-rank, rank - 1);
  const n = shape.reduce((p, d) => p * d, 1);
  const C = shape[axis < 0 ? axis + rank : axis];
  const values = Object.fromEntries(op.data.map((key) => [key, data(r, n)]));
  const opts = { axis };
  for (const [key, kind] of Object.entries(op.options)) {
    if (key === 'axis' || FUSED.includes(key) || !(op.required.includes(key) || r.chance(0.4))) continue;
    opts[key] = validOption(r, kind, key, C, C === 0 ? 0 : n / C, n);
  }
  fuse(r, op, opts, n);
  return { name, op, shape, n, C, values, opts, padded: values.x };
}

/** Valid fused options (SPEC section 7): relu or not, a residual, and the mask exactly with relu. */
function fuse(r, op, opts, n) {
  const has = (key) => key in op.options;
  const relu = r.chance(0.5);
  if (relu || r.chance(0.3)) opts.activation = relu ? 'relu' : 'identity';
  if (has('residual') && r.chance(0.4)) opts.residual = data(r, n);
  const needsMask = !has('out'); // backward and backwardSums require it with relu
  if (relu && has('reluMask') && (needsMask || r.chance(0.5))) {
    opts.reluMask = Uint8Array.from({ length: Math.ceil(n / 8) }, () => r.int(0, 255));
  }
  if (has('dresidual') && r.chance(0.4)) opts.dresidual = r.chance(0.5) ? true : new Float32Array(n);
}

/** Hostile values for an option (or field) of `kind`. */
function hostileFor(kind, call) {
  if (kind === 'number' || kind === 'count') return hostile.numbers();
  if (kind === 'boolean') return hostile.booleans();
  if (kind === 'C64') return hostile.arrays64(call.C);
  if (kind in OBJECT_FIELDS) return [...hostile.optionObjects({}), ...hostile.numbers().slice(0, 4)];
  if (kind === 'activation') return hostile.activations();
  if (kind === 'mask') return hostile.masks(Math.ceil(call.n / 8));
  if (kind === 'dresidual') return [['true', () => true], ['false', () => false], ...hostile.arrays(call.n)];
  return hostile.arrays(kind === 'C' ? call.C : call.n);
}

/** Sets an option, replacing any getter an earlier mutation installed. */
const setOption = (opts, key, value) => Object.defineProperty(opts, key, { value, writable: true, enumerable: true, configurable: true });

/** One hostile replacement, applied to `call`; returns its label. */
function mutate(r, call) {
  const { op, opts } = call;
  const where = r.pick([...op.data, 'shape', 'opts', 'option', 'option', 'alias']);
  if (op.data.includes(where)) {
    const [label, make] = r.pick(hostile.arrays(call.n));
    call.values[where] = make();
    return `${where}: ${label}`;
  }
  if (where === 'shape') {
    const [label, make] = r.pick(hostile.shapes(call.shape));
    call.shapeArg = make();
    return `shape: ${label}`;
  }
  if (where === 'opts') {
    const [label, make] = r.pick(hostile.optionObjects(opts));
    call.optsArg = make();
    return `opts: ${label}`;
  }
  if (where === 'alias') {
    const key = r.pick(OUTPUTS.filter((k) => k in op.options));
    const x = call.padded; // the valid x, with room for a shifted view
    const [label, make] = r.pick([
      ['x itself', () => x],
      ['an identical view of x', () => new Float32Array(x.buffer, x.byteOffset, x.length)],
      ['a view of x shifted by one float', () => new Float32Array(x.buffer, x.byteOffset + 4, x.length)],
      ['a mask-sized byte view into x', () => new Uint8Array(x.buffer, x.byteOffset + 1, Math.ceil(x.length / 8))],
      ['another option array', () => Object.values(Object.getOwnPropertyDescriptors(opts)).map((d) => d.value).find(isF32) || x],
      ['dy', () => call.values.dy || x],
      ["a Float64Array over x's bytes", () => new Float64Array(x.buffer, 8, Math.min(call.C, (x.buffer.byteLength - 8) >> 3))],
    ]);
    setOption(opts, key, make());
    return `opts.${key}: alias, ${label}`;
  }
  const key = r.pick(Object.keys(op.options));
  const kind = op.options[key];
  const current = Object.getOwnPropertyDescriptor(opts, key);
  if (kind in OBJECT_FIELDS && current && current.value && typeof current.value === 'object' && r.chance(0.6)) {
    // one field of a valid option object
    const field = r.pick(Object.keys(OBJECT_FIELDS[kind]));
    const [label, make] = r.pick(hostileFor(OBJECT_FIELDS[kind][field], call));
    setOption(opts, key, { ...current.value, [field]: make() });
    return `opts.${key}.${field}: ${label}`;
  }
  const [label, make] = r.pick(hostileFor(kind, call));
  if (r.chance(0.2)) {
    const [how, apply] = r.pick(hostile.optionGetters(current && current.value, make()));
    apply(opts, key);
    return `opts.${key}: ${how}`;
  }
  setOption(opts, key, make());
  return `opts.${key}: ${label}`;
}

function argsOf(call) {
  const shape = 'shapeArg' in call ? call.shapeArg : call.shape;
  const opts = 'optsArg' in call ? call.optsArg : call.opts;
  return [...call.op.data.map((k) => call.values[k]), shape, opts];
}

/** mergeMoments on a valid list of parts (empty ones among them) with 0 to 2 hostile changes. */
function mergeCall(r, round) {
  const C = r.int(0, 4);
  const parts = Array.from({ length: r.int(1, 4) }, () => ({ count: r.pick([0, 1, 5]), mean: data64(r, C), m2: data64(r, C) }));
  const valid = parts.slice();
  let list = parts;
  const labels = Array.from({ length: r.pick([0, 1, 2]) }, () => {
    const k = r.int(0, parts.length - 1);
    const what = r.pick(['list', 'part', 'count', 'mean', 'm2']);
    const [label, make] = r.pick(what === 'list' ? hostile.shapes([1, 2]) : what === 'part' ? [...hostile.optionObjects(valid[k]), ...hostile.numbers().slice(0, 3)] : what === 'count' ? hostile.numbers() : hostile.arrays64(C));
    if (what === 'list') list = make();
    else if (what === 'part') parts[k] = make();
    else parts[k] = { ...valid[k], [what]: make() };
    return `${what === 'list' ? 'parts' : `parts[${k}]${what === 'part' ? '' : `.${what}`}`}: ${label}`;
  });
  return { label: `round ${round}, mergeMoments(${labels.join('; ') || 'valid'})`, run: () => bn.mergeMoments(list), check: (v) => (isMoments(v) ? null : `returned ${typeof v}`) };
}

const threadCalls = (r) => {
  const [label, make] = r.pick(hostile.numbers());
  return [
    { label: `setNumThreads(${label})`, run: () => bn.setNumThreads(make()), check: (v) => (v === undefined ? null : 'returned a value') },
    { label: 'backendInfo()', run: () => bn.backendInfo(), check: (v) => (v && typeof v.backend === 'string' ? null : 'no backend') },
  ];
};

function makeCalls(r, round) {
  const name = r.pick(Object.keys(OPS));
  const call = validCall(r, name);
  const labels = Array.from({ length: r.pick([0, 1, 1, 2, 3]) }, () => mutate(r, call));
  const label = `round ${round}, ${name}(${labels.join('; ') || 'valid'})`;
  const check = (v) => (call.op.check(v) ? null : `returned ${typeof v}`);
  const args = argsOf(call);
  return [
    { label, run: () => bn[name](...args), check },
    { label: `${label} async`, run: () => bn[`${name}Async`](...args), check },
    ...(round % 10 === 0 ? threadCalls(r) : []),
    ...(round % 5 === 0 ? [mergeCall(r, round)] : []),
  ];
}

fuzz(Number(process.argv[2] || 2000), Number(process.argv[3] || 1), makeCalls).finally(() => bn.setNumThreads(2));
