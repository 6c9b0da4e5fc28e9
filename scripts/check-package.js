#!/usr/bin/env node
'use strict';
// check-package.js <package dir>: loads batchnorm from that folder, as a user would, and prints
// one JSON line that the distribution tests and scripts assert on:
//   glibc       the C library's version this process runs on
//   info        backendInfo()
//   libraries   the batchnorm and libgomp files this process mapped (/proc/self/maps)
//   ompThreads  threads this process gained while a large call ran (the OpenMP pool)
//   maxError    the public API's worst error against a float64 computation, normalised as
//               SPEC section 5 bounds it (the spec's bounds are 1e-5 and 2e-5); the string
//               "NaN" or "Infinity" when it is not finite
//   nativeError the error the raw addon throws for a bad thread count (a C++ exception
//               crossing into JS); null on the JS backend
// Plain JavaScript with no dependencies, so that it also runs on an emulated arm64 Node.js.
const fs = require('fs');
const path = require('path');

const dir = path.resolve(process.argv[2] || '.');
const bn = require(dir);

const threadCount = () => Number(/^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);

function mappedLibraries() {
  const files = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').map((line) => line.split(/\s+/)[5] || '');
  return [...new Set(files.filter((f) => /batchnorm|libgomp/.test(path.basename(f))))];
}

// A [N, C, L] tensor with per-channel offsets, so per-channel bookkeeping errors show.
function input(N, C, L, seed) {
  const x = new Float32Array(N * C * L);
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / L) % C;
    x[i] = 3 * c - 5 + Math.sin(seed * i + 0.5) * (1 + c);
  }
  return x;
}

// Float64 batch statistics of channel c over the [N, C, L] layout.
function channelStats(x, N, C, L, c, eps) {
  let sum = 0;
  for (let n = 0; n < N; n++) for (let l = 0; l < L; l++) sum += x[(n * C + c) * L + l];
  const mean = sum / (N * L);
  let sq = 0;
  for (let n = 0; n < N; n++) for (let l = 0; l < L; l++) sq += (x[(n * C + c) * L + l] - mean) ** 2;
  return { mean, invStd: 1 / Math.sqrt(sq / (N * L) + eps) };
}

// max |got - want| / scale, with SPEC section 5's scale: max(1, max |want|) for whole arrays,
// the sum of the terms' magnitudes for reductions.
function worstError(got, want, scale = Math.max(1, ...want.map(Math.abs))) {
  return Math.max(...want.map((w, i) => Math.abs(got[i] - w) / scale));
}

// The worst normalised error of forwardTrain, forwardInference and backward.
function maxApiError() {
  const [N, C, L, eps] = [4, 3, 37, 1e-5];
  const x = input(N, C, L, 0.37);
  const dy = input(N, C, L, 0.11);
  const gamma = Float32Array.from({ length: C }, (_, c) => 0.5 + c);
  const beta = Float32Array.from({ length: C }, (_, c) => c - 1);
  const runningMean = Float32Array.from({ length: C }, (_, c) => c);
  const runningVar = Float32Array.from({ length: C }, (_, c) => 1 + c);
  const train = bn.forwardTrain(x, [N, C, L], { gamma, beta, eps });
  const inference = bn.forwardInference(x, [N, C, L], { gamma, beta, runningMean, runningVar, eps });
  const grads = bn.backward(dy, x, [N, C, L], { gamma, saveMean: train.saveMean, saveInvStd: train.saveInvStd });

  const errors = [];
  const [y, yInference, dx] = [[], [], []];
  for (let c = 0; c < C; c++) {
    const { mean, invStd } = channelStats(x, N, C, L, c, eps);
    const indices = [];
    for (let n = 0; n < N; n++) for (let l = 0; l < L; l++) indices.push((n * C + c) * L + l);
    const xhat = indices.map((i) => (x[i] - mean) * invStd);
    const dbeta = indices.reduce((s, i) => s + dy[i], 0);
    const dgamma = indices.reduce((s, i, k) => s + dy[i] * xhat[k], 0);
    indices.forEach((i, k) => {
      y[i] = gamma[c] * xhat[k] + beta[c];
      yInference[i] = (gamma[c] * (x[i] - runningMean[c])) / Math.sqrt(runningVar[c] + eps) + beta[c];
      dx[i] = ((gamma[c] * invStd) / (N * L)) * (N * L * dy[i] - dbeta - xhat[k] * dgamma);
    });
    errors.push(
      Math.abs(train.saveMean[c] - mean) / Math.max(Math.abs(mean), 1 / invStd),
      Math.abs(train.saveInvStd[c] - invStd) / invStd,
      worstError([grads.dbeta[c]], [dbeta], indices.reduce((s, i) => s + Math.abs(dy[i]), 0)),
      worstError([grads.dgamma[c]], [dgamma], indices.reduce((s, i, k) => s + Math.abs(dy[i] * xhat[k]), 0)),
    );
  }
  errors.push(worstError(train.y, y), worstError(inference, yInference), worstError(grads.dx, dx));
  return Math.max(...errors);
}

// Threads gained while a call large enough to be split runs (libgomp keeps its pool).
function ompThreads() {
  const before = threadCount();
  const x = input(16, 64, 4096, 0.01);
  bn.forwardTrain(x, [16, 64, 4096], { out: x });
  return threadCount() - before;
}

function nativeError() {
  const info = bn.backendInfo();
  if (info.backend !== 'native') return null;
  try {
    require(require.resolve('node-gyp-build', { paths: [dir] }))(dir).setNumThreads(0);
    return 'no error';
  } catch (e) {
    return `${e.constructor.name}: ${e.message}`;
  }
}

// JSON has no NaN or Infinity: JSON.stringify writes them as null, which a check such as
// `r.maxError <= 1e-5` takes for 0. As strings, every comparison with them is false.
const finiteOrString = (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v);

console.log(
  JSON.stringify(
    {
      glibc: process.report.getReport().header.glibcVersionRuntime,
      info: bn.backendInfo(),
      libraries: mappedLibraries(),
      maxError: maxApiError(),
      ompThreads: ompThreads(),
      nativeError: nativeError(),
    },
    finiteOrString,
  ),
);
