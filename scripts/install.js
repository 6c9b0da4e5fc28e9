#!/usr/bin/env node
'use strict';
// Install step: use a matching prebuilt binary, else compile from source with node-gyp
// (both via node-gyp-build). If neither works, the install still succeeds: it prints one
// line (node-gyp's own log only with --loglevel=verbose), and leaves the reason in
// build/install-failure.txt, which the loader adds to backendInfo().fallbackReason when the
// package then runs its JavaScript backend.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const failureFile = path.join(root, 'build', 'install-failure.txt');

/** The most telling lines of node-gyp's log, e.g. "Could not find any Python installation to use". */
function whyBuildFailed(log, status) {
  const lines = log.split('\n');
  const gypError = lines.map((line) => /gyp ERR! stack Error: (.+)/.exec(line)?.[1]).find(Boolean);
  const toolError = lines.find((line) => !line.startsWith('gyp ') && /error:|No such file or directory|not found/.test(line));
  return [gypError, toolError].filter(Boolean).map((s) => s.trim()).join(': ') || `node-gyp-build exited with status ${status}`;
}

const verbose = ['verbose', 'silly'].includes(process.env.npm_config_loglevel);
const child = spawn(process.execPath, [require.resolve('node-gyp-build/bin.js')], { cwd: root, stdio: ['inherit', 'inherit', 'pipe'] });
let log = '';
child.stderr.on('data', (chunk) => {
  if (verbose) process.stderr.write(chunk);
  log += chunk;
});
child.on('close', (status) => {
  fs.rmSync(failureFile, { force: true });
  if (status !== 0) {
    const reason = whyBuildFailed(log, status);
    fs.mkdirSync(path.dirname(failureFile), { recursive: true });
    fs.writeFileSync(failureFile, `${reason}\n`);
    console.log(`batchnorm: no usable prebuilt binary for ${process.platform}-${process.arch} and building from source failed (${reason}); the JavaScript backend will be used.`);
  }
  process.exit(0);
});
