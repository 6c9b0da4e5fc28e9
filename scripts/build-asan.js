#!/usr/bin/env node
'use strict';
// Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer, for `npm run test:asan`:
// the sources and per-ISA flags of sources.json (as binding.gyp uses them), compiled with g++
// into build/asan/batchnorm.node, leaving the shipping build in build/Release alone. Any
// undefined behaviour aborts (-fno-sanitize-recover). Prints the path of the built addon.
const { spawn } = require('child_process');
const { existsSync, mkdirSync } = require('fs');
const { availableParallelism, homedir } = require('os');
const { basename, dirname, join } = require('path');

const root = join(__dirname, '..');
const out = join(root, 'build', 'asan');
const list = require('../sources.json');
const cxx = process.env.CXX || 'g++';

const SANITIZE = ['-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer'];
const COMPILE = [
  ...SANITIZE, '-g', '-O1', '-std=gnu++17', '-fPIC', '-pthread', '-fopenmp', '-Wall', '-Wextra', '-Wno-unused-parameter',
  '-DNAPI_VERSION=8', '-DNAPI_CPP_EXCEPTIONS', '-DNODE_GYP_MODULE_NAME=batchnorm', '-DBUILDING_NODE_EXTENSION',
  `-I${nodeHeaders()}`, `-I${dirname(require.resolve('node-addon-api/napi.h'))}`,
];

/** Node's C headers: npm's nodedir, next to this node binary, or node-gyp's download cache. */
function nodeHeaders() {
  const candidates = [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    join(dirname(process.execPath), '..', 'include', 'node'),
    join(homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
  ].filter(Boolean);
  const found = candidates.find((dir) => existsSync(join(dir, 'node_api.h')));
  if (!found) fail(`no Node.js headers in ${candidates.join(', ')}: run \`npm run build:native\` once to download them`);
  return found;
}

function fail(message) {
  console.error(`build-asan: ${message}`);
  process.exit(1);
}

function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cxx, args, { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cxx} ${args.join(' ')} exited with ${code}`))));
  });
}

/** Every source with its extra flags: the common ones, then each ISA of this architecture. */
function units() {
  const isas = Object.values(list.isa).filter((isa) => isa.arch === process.arch);
  return [
    ...list.common.map((source) => ({ source, flags: [] })),
    ...isas.flatMap((isa) => isa.sources.map((source) => ({ source, flags: isa.flags }))),
  ];
}

async function main() {
  mkdirSync(out, { recursive: true });
  const queue = units().map((u) => ({ ...u, object: join(out, `${basename(u.source, '.cpp')}.o`) }));
  const objects = queue.map((u) => u.object);
  const worker = async () => {
    for (let u = queue.shift(); u; u = queue.shift()) await run([...COMPILE, ...u.flags, '-c', join(root, u.source), '-o', u.object]);
  };
  await Promise.all(Array.from({ length: availableParallelism() }, worker));
  const addon = join(out, 'batchnorm.node');
  await run([...SANITIZE, '-shared', '-pthread', '-fopenmp', '-o', addon, ...objects]);
  console.log(addon);
}

main().catch((e) => fail(e.message));
