'use strict';
// Loads the package by its name, as a user would (package.json "exports", through Node's
// self-reference): the root must not load TensorFlow.js; 'batchnorm/tfjs' must resolve to the
// built entry point and give install and uninstall. Prints what it saw.
const { relative, sep } = require('path');

const tfjsLoaded = () => Object.keys(require.cache).some((file) => file.includes(`${sep}@tensorflow${sep}`));

const root = require('batchnorm');
const rootLoadsTfjs = tfjsLoaded();
const entry = relative(require.resolve('batchnorm/package.json').replace(/package\.json$/, ''), require.resolve('batchnorm/tfjs'));
const tfjs = require('batchnorm/tfjs');
console.log(
  JSON.stringify({
    rootExportsForwardTrain: typeof root.forwardTrain,
    rootLoadsTfjs,
    entry,
    entryExports: Object.keys(tfjs).sort(),
    entryLoadsTfjs: tfjsLoaded(),
  }),
);
