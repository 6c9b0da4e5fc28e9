'use strict';
// Hostile arguments for the fuzzers (fuzz-api.js, fuzz-binding.js). Each kind of argument has a
// list of [label, make] pairs; make() builds a fresh value, so no call sees another's leftovers.
// A seeded generator picks among them: every run makes the same calls, and a failure names the
// seed and labels that reproduce it.
const vm = require('vm');

/** xorshift32 in [0, 1); the tests' generator (test/helpers/random.ts) is TypeScript. */
function random(seed) {
  let s = (seed >>> 0) || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = (list) => list[int(0, list.length - 1)];
  return { next, int, pick, chance: (p) => next() < p };
}

function detached(n) {
  const a = new Float32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

function revokedProxy(target) {
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
}

const thrower = () => {
  throw new Error('hostile getter');
};

/** An object whose valueOf gives a different number on every read. */
const shifty = (values) => {
  let reads = 0;
  return { valueOf: () => values[reads++ % values.length] };
};

/** Values for a Float32Array argument of `n` elements: valid ones in odd places, and impostors. */
const arrays = (n) => [
  ['Float32Array(n)', () => new Float32Array(n)],
  ['Float32Array(n) at an odd byteOffset', () => new Float32Array(new ArrayBuffer(4 * n + 12), 4 * (1 + (n % 3)), n)],
  ['Float32Array(n) on a SharedArrayBuffer at offset 4', () => new Float32Array(new SharedArrayBuffer(4 * n + 4), 4, n)],
  ['length-tracking view of a growable SharedArrayBuffer', () => new Float32Array(new SharedArrayBuffer(4 * n, { maxByteLength: 8 * n + 4 }))],
  ['view of a resizable ArrayBuffer', () => new Float32Array(new ArrayBuffer(4 * n, { maxByteLength: 8 * n + 4 }))],
  ['Float32Array(n) of another realm', () => vm.runInNewContext('new Float32Array(n)', { n })],
  ['Float32Array(n + 1)', () => new Float32Array(n + 1)],
  ['Float32Array(n - 1)', () => new Float32Array(Math.max(n - 1, 0))],
  ['Float32Array(0)', () => new Float32Array(0)],
  ['detached Float32Array(n)', () => detached(n)],
  ['Float32Array(n) with an own length lying n + 7', () => Object.defineProperty(new Float32Array(n), 'length', { value: n + 7 })],
  ['Float32Array(n) with a throwing own buffer getter', () => Object.defineProperty(new Float32Array(n), 'buffer', { get: thrower })],
  ['subclass of Float32Array with a throwing length', () => new (class extends Float32Array { get length() { return thrower(); } })(n)],
  ['Proxy of Float32Array(n)', () => new Proxy(new Float32Array(n), {})],
  ['revoked Proxy', () => revokedProxy(new Float32Array(n))],
  ['object tagged Float32Array', () => ({ [Symbol.toStringTag]: 'Float32Array', length: n, buffer: new ArrayBuffer(4 * n) })],
  ['Float64Array(n)', () => new Float64Array(n)],
  ['Int32Array(n)', () => new Int32Array(n)],
  ['Uint8Array(4n)', () => new Uint8Array(4 * n)],
  ['Buffer(4n)', () => Buffer.alloc(4 * n)],
  ['DataView', () => new DataView(new ArrayBuffer(4 * n))],
  ['plain array', () => Array.from({ length: n }, () => 1)],
  ['null', () => null],
  ['undefined', () => undefined],
  ['number', () => n],
  ['string', () => 'Float32Array'],
  ['symbol', () => Symbol('x')],
  ['bigint', () => 1n],
  ['function', () => function f() {}],
  ['object with a throwing valueOf', () => ({ valueOf: thrower })],
];

/** Values for a Float64Array argument of `n` elements (SPEC section 8's statistics): valid ones in odd places, and impostors. */
const arrays64 = (n) => [
  ['Float64Array(n)', () => new Float64Array(n)],
  ['Float64Array(n) at byteOffset 8', () => new Float64Array(new ArrayBuffer(8 * n + 8), 8, n)],
  ['Float64Array(n) on a SharedArrayBuffer', () => new Float64Array(new SharedArrayBuffer(8 * n + 8), 8, n)],
  ['Float64Array(n) on a resizable ArrayBuffer', () => new Float64Array(new ArrayBuffer(8 * n, { maxByteLength: 16 * n + 8 }))],
  ['Float64Array(n) of another realm', () => vm.runInNewContext('new Float64Array(n)', { n })],
  ['Float64Array(n + 1)', () => new Float64Array(n + 1)],
  ['detached Float64Array(n)', () => {
    const a = new Float64Array(n);
    structuredClone(a.buffer, { transfer: [a.buffer] });
    return a;
  }],
  ['Float64Array(n) full of NaN', () => new Float64Array(n).fill(NaN)],
  ...arrays(n),
];

/** Values for the bit-packed ReLU mask of `bytes` bytes (SPEC section 7): a Uint8Array, and impostors. */
const masks = (bytes) => [
  ['Uint8Array(bytes)', () => new Uint8Array(bytes)],
  ['Uint8Array(bytes) of garbage', () => new Uint8Array(bytes).fill(0xa5)],
  ['Uint8Array(bytes) at an odd byteOffset', () => new Uint8Array(new ArrayBuffer(bytes + 3), 3, bytes)],
  ['Uint8Array(bytes) on a SharedArrayBuffer', () => new Uint8Array(new SharedArrayBuffer(bytes + 1), 1, bytes)],
  ['Buffer(bytes)', () => Buffer.alloc(bytes)],
  ['Uint8Array(bytes) of another realm', () => vm.runInNewContext('new Uint8Array(bytes)', { bytes })],
  ['view of a resizable ArrayBuffer', () => new Uint8Array(new ArrayBuffer(bytes, { maxByteLength: 2 * bytes + 4 }))],
  ['Uint8Array(bytes + 1)', () => new Uint8Array(bytes + 1)],
  ['Uint8Array(bytes - 1)', () => new Uint8Array(Math.max(bytes - 1, 0))],
  ['Uint8Array(8 bytes): one per element', () => new Uint8Array(8 * bytes)],
  ['detached Uint8Array(bytes)', () => {
    const a = new Uint8Array(bytes);
    structuredClone(a.buffer, { transfer: [a.buffer] });
    return a;
  }],
  ['Uint8ClampedArray(bytes)', () => new Uint8ClampedArray(bytes)],
  ['Int8Array(bytes)', () => new Int8Array(bytes)],
  ['Float32Array(bytes)', () => new Float32Array(bytes)],
  ['Uint8Array(bytes) with an own length lying', () => Object.defineProperty(new Uint8Array(bytes), 'length', { value: bytes + 9 })],
  ['Proxy of Uint8Array(bytes)', () => new Proxy(new Uint8Array(bytes), {})],
  ['plain array', () => Array.from({ length: bytes }, () => 255)],
  ['null', () => null],
  ['true', () => true],
  ['number', () => bytes],
];

/** Values for `activation`. */
const activations = () => [
  ["'relu'", () => 'relu'], ["'identity'", () => 'identity'], ["'ReLU'", () => 'ReLU'], ["'sigmoid'", () => 'sigmoid'], ["''", () => ''],
  ['null', () => null], ['1', () => 1], ['new String(relu)', () => new String('relu')], ['symbol', () => Symbol('relu')],
  ['object with toString relu', () => ({ toString: () => 'relu' })],
];

const numbers = () => [
  ['0', () => 0], ['-0', () => -0], ['-1', () => -1], ['0.5', () => 0.5], ['1', () => 1], ['3', () => 3], ['1e-5', () => 1e-5],
  ['NaN', () => NaN], ['Infinity', () => Infinity], ['-Infinity', () => -Infinity], ['MIN_VALUE', () => Number.MIN_VALUE],
  ['MAX_VALUE', () => Number.MAX_VALUE], ['2^31', () => 2 ** 31], ['2^32', () => 2 ** 32], ['2^53', () => 2 ** 53],
  ['2^53 + 2', () => 2 ** 53 + 2], ['-2^53', () => -(2 ** 53)], ['1.5', () => 1.5], ['"1"', () => '1'], ['true', () => true],
  ['null', () => null], ['new Number(1)', () => new Number(1)], ['1n', () => 1n], ['symbol', () => Symbol('n')],
  ['valueOf changing between reads', () => shifty([1e-5, -1, NaN])], ['[]', () => []],
];

const booleans = () => [
  ['true', () => true], ['false', () => false], ['1', () => 1], ['0', () => 0], ['"true"', () => 'true'], ['null', () => null],
  ['new Boolean(false)', () => new Boolean(false)], ['valueOf changing between reads', () => shifty([true, false])],
];

/** Values for `shape` when the valid one is `valid`. */
const shapes = (valid) => [
  ['valid', () => [...valid]],
  ['valid with trailing 1', () => [...valid, 1]],
  ['valid, frozen', () => Object.freeze([...valid])],
  ['NaN dimension', () => [NaN, ...valid.slice(1)]],
  ['negative dimension', () => [-valid[0], ...valid.slice(1)]],
  ['fractional dimension', () => [valid[0] + 0.5, ...valid.slice(1)]],
  ['Infinity dimension', () => [Infinity, ...valid.slice(1)]],
  ['2^53 dimension', () => [2 ** 53, ...valid.slice(1)]],
  ['product past 2^53', () => [2 ** 40, 2 ** 40]],
  ['product past 2^64 with a 0', () => [2 ** 32, 0, 2 ** 32]],
  ['huge dimensions around a 0', () => [2 ** 40, 0, 2 ** 40]],
  ['0 batch, huge inner', () => [0, 3, 2 ** 52]],
  ['rank 0', () => []],
  ['rank 1', () => [valid.reduce((p, d) => p * d, 1)]],
  ['string dimension', () => [String(valid[0]), ...valid.slice(1)]],
  ['bigint dimension', () => [BigInt(valid[0]), ...valid.slice(1)]],
  ['object dimension with valueOf', () => [shifty([valid[0], -1]), ...valid.slice(1)]],
  ['Int32Array', () => Int32Array.from(valid)],
  ['array-like object', () => ({ length: valid.length, ...valid })],
  ['string', () => valid.join(',')],
  ['null', () => null],
  ['sparse array of length 2^31', () => Object.assign(new Array(2 ** 31), valid)],
  ['array with a throwing element getter', () => Object.defineProperty([...valid], 0, { get: thrower })],
  ['Proxy whose length grows on later reads', () => {
    let reads = 0;
    return new Proxy([...valid], { get: (t, k) => (k === 'length' && reads++ > 0 ? 2 ** 32 - 1 : t[k]) });
  }],
  ['Proxy of length 2^32 - 1 full of ones', () => new Proxy([], { get: (t, k) => (k === 'length' ? 2 ** 32 - 1 : typeof k === 'string' ? 1 : undefined) })],
  ['revoked Proxy', () => revokedProxy([...valid])],
];

/** Whole-options replacements, given the valid options object. */
const optionObjects = (valid) => [
  ['undefined', () => undefined],
  ['null', () => null],
  ['number', () => 5],
  ['string', () => 'opts'],
  ['array', () => []],
  ['inherited from the valid options', () => Object.create(valid)],
  ['frozen copy', () => Object.freeze(Object.defineProperties({}, Object.getOwnPropertyDescriptors(valid)))],
  ['Proxy whose get throws', () => new Proxy(valid, { get: thrower })],
  ['Proxy of the valid options', () => new Proxy(valid, {})],
  ['revoked Proxy', () => revokedProxy(valid)],
];

/** Replaces opts[key] by a getter that throws, or by one whose value changes on every read. */
const optionGetters = (value, other) => [
  ['throwing getter', (o, key) => Object.defineProperty(o, key, { get: thrower, enumerable: true, configurable: true })],
  ['getter changing between reads', (o, key) => {
    let reads = 0;
    Object.defineProperty(o, key, { get: () => (reads++ % 2 ? other : value), enumerable: true, configurable: true });
  }],
];

module.exports = { random, arrays, arrays64, masks, activations, numbers, booleans, shapes, optionObjects, optionGetters };
