'use strict';
// Shrinks a resizable ArrayBuffer right after an async call was given a view of it. Had the
// call been accepted, its kernel would write to memory the shrink decommitted (SIGSEGV).
// Prints how each call settled.
const { join } = require('path');

const bn = require(join(__dirname, '..', '..'));
const n = 1 << 24;

async function main() {
  const buffer = new ArrayBuffer(4 * n, { maxByteLength: 4 * n });
  const outcomes = [];
  for (let i = 0; i < 64; i++) {
    buffer.resize(4 * n);
    const pending = bn.forwardTrainAsync(new Float32Array(buffer), [16, 4, n / 64]);
    buffer.resize(0);
    outcomes.push(await pending.then(() => 'resolved', (e) => `${e.name} ${e.code}`));
  }
  console.log(JSON.stringify(outcomes));
}

main();
