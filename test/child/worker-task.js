'use strict';
// Starts a task in a worker thread of a child script that is its own worker (the script tells
// the tasks apart by workerData.task). Shared by collective-workers.js and
// kernel-exchange-workers.js.
const { Worker } = require('worker_threads');

/**
 * A worker of `script` running `task` with `data` (and the environment `env`); resolves with its
 * first message, its error ({ workerError }) or its exit ({ exitCode }).
 */
function startTask(script, task, data, env = process.env) {
  return new Promise((resolve) => {
    const w = new Worker(script, { workerData: { task, ...data }, env });
    w.once('message', resolve);
    w.once('error', (e) => resolve({ workerError: e.message }));
    w.once('exit', (code) => resolve({ exitCode: code }));
  });
}

module.exports = { startTask };
