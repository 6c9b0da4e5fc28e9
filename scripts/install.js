#!/usr/bin/env node
'use strict';
// Install step: use a matching prebuilt binary, else compile from source with node-gyp
// (both via node-gyp-build). If neither works, the install still succeeds: the package
// then runs its pure JavaScript backend, and backendInfo().fallbackReason says why.
const { spawnSync } = require('child_process');

const bin = require.resolve('node-gyp-build/bin.js');
const result = spawnSync(process.execPath, [bin], { stdio: 'inherit' });
if (result.status !== 0) {
  console.log('batchnorm: no prebuilt binary matched and the native build failed; the JavaScript backend will be used.');
}
process.exit(0);
