/**
 * A kernel call whose scratch space cannot be allocated (test/out-of-memory.test.ts). `measure`
 * prints the process's address space once the inputs and every destination exist and each call
 * has run once on a small input (the thread pools started); `run`, under an address-space limit a
 * little above that, makes the calls on C channels and prints each one's error.
 */
const { readFileSync } = require('fs');
const { backward, backwardAsync, BatchNormRangeError, forwardTrain, forwardTrainAsync } = require('../../dist/index.js');

const [mode, channels] = process.argv.slice(2);
const C = Number(channels);
const shape = [2, C];
const x = new Float32Array(2 * C);
const forward = { out: new Float32Array(2 * C), saveMean: new Float32Array(C), saveInvStd: new Float32Array(C) };
const grads = { saveMean: forward.saveMean, saveInvStd: forward.saveInvStd.fill(1), dx: new Float32Array(2 * C), dgamma: new Float32Array(C), dbeta: new Float32Array(C) };

const calls = {
  forwardTrain: (x, shape, o) => forwardTrain(x, shape, o),
  forwardTrainAsync: (x, shape, o) => forwardTrainAsync(x, shape, o),
  backward: (x, shape, o) => backward(x, x, shape, o),
  backwardAsync: (x, shape, o) => backwardAsync(x, x, shape, o),
};
const optionsOf = (name) => (name.startsWith('forward') ? forward : grads);

(async () => {
  const small = new Float32Array(2 * 64 * 4096);
  const stats = { saveMean: new Float32Array(64), saveInvStd: new Float32Array(64).fill(1) };
  for (const [name, call] of Object.entries(calls)) await call(small, [2, 64, 4096], name.startsWith('forward') ? {} : stats);
  if (mode === 'measure') {
    console.log(/VmSize:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
    return;
  }
  const outcomes = {};
  for (const [name, call] of Object.entries(calls)) {
    try {
      await call(x, shape, optionsOf(name));
      outcomes[name] = 'no error';
    } catch (e) {
      outcomes[name] = { class: e instanceof BatchNormRangeError ? 'BatchNormRangeError' : e.constructor.name, code: e.code };
    }
  }
  console.log(JSON.stringify(outcomes));
})();
