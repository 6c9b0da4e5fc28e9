#!/usr/bin/env node
'use strict';
// Install step: use a matching prebuilt binary, else compile from source with node-gyp
// (both via node-gyp-build). If neither works, the install still succeeds: it prints one
// line (node-gyp's own log only with --loglevel=verbose), and leaves the reason in
// build/install-failure.txt, which the loader adds to backendInfo().fallbackReason when the
// package then runs its JavaScript backend.
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const failureFile = path.join(root, 'build', 'install-failure.txt');
const platform = `${process.platform}-${process.arch}`;

/** The most telling lines of node-gyp's log, e.g. "Could not find any Python installation to use". */
function whyBuildFailed(log, status) {
  const lines = log.split('\n');
  const gypError = lines.map((line) => /gyp ERR! stack Error: (.+)/.exec(line)?.[1]).find(Boolean);
  const toolError = lines.find((line) => !line.startsWith('gyp ') && /error:|No such file or directory|not found/.test(line));
  return [gypError, toolError].filter(Boolean).map((s) => s.trim()).join(': ') || `node-gyp-build exited with status ${status}`;
}

/**
 * Whether node-gyp-build finds a binary that loads, in a separate process. After a failed build
 * that is a prebuild: one that loads is compiled over only when --build-from-source asked for it.
 */
function binaryLoads() {
  const load = `require(${JSON.stringify(require.resolve('node-gyp-build'))})(${JSON.stringify(root)})`;
  return spawnSync(process.execPath, ['-e', load], { cwd: root, stdio: 'ignore' }).status === 0;
}

const verbose = ['verbose', 'silly'].includes(process.env.npm_config_loglevel);
// node-gyp logs on stderr and make on stdout (a failed compile prints its progress there too):
// both are shown only when verbose, so a failed build says one line.
const child = spawn(process.execPath, [require.resolve('node-gyp-build/bin.js')], { cwd: root, stdio: ['inherit', 'pipe', 'pipe'] });
let log = '';
child.stdout.on('data', (chunk) => {
  if (verbose) process.stdout.write(chunk);
});
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
    console.log(
      binaryLoads()
        ? `batchnorm: building from source failed (${reason}); the prebuilt binary for ${platform} will be used.`
        : `batchnorm: no usable prebuilt binary for ${platform} and building from source failed (${reason}); the JavaScript backend will be used.`,
    );
  }
  process.exit(0);
});
