'use strict';
// The IPC collective (lib/collective/ipc.ts) with real child processes. Usage:
//   node collective-ipc.js sums <size> <rounds>   each child checks every round's sums against
//                                                 the rank-order sum (NaN, Infinity and -0
//                                                 included) and the children's digests agree
//   node collective-ipc.js dies <size>            rank 1 exits mid-step; the others report errors
//   node collective-ipc.js claims <r/s,r/s,...>   as sums, but child k joins as rank r of size s
//                                                 (its place in the parent's list need not match)
//   node collective-ipc.js close <size>           rank 0 closes its collective while its call waits
//                                                 (the others never call; generous timeouts, so a
//                                                 call that waits for one hangs the test instead)
// The parent forks the children (this file with `child`) and prints one JSON line.
const { fork } = require('child_process');
const { createHash } = require('crypto');
const { join } = require('path');

const bn = require(join(__dirname, '..', '..'));

function contribution(i, rank) {
  const n = 1 + ((i * 389) % 257);
  const d = new Float64Array(n);
  for (let j = 0; j < n; j++) d[j] = Math.sin(i * 13 + j + rank * 77) * 10 ** ((j % 7) - 3);
  if (i % 5 === 0) d[0] = [NaN, Infinity, -0, 1e308][rank % 4];
  return d;
}

function expected(i, size) {
  const sum = contribution(i, 0);
  for (let k = 1; k < size; k++) contribution(i, k).forEach((v, j) => (sum[j] += v));
  return sum;
}

const bytes = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

const report = (e) => ({ code: e.code, message: e.message });

/** Rank 0's call waits (no other rank calls) when it closes the collective: the call must fail at once. */
async function closeWhileWaiting(rank, size) {
  const collective = bn.joinIpcGroup({ rank, size, timeoutMs: 600_000 });
  if (rank !== 0) return; // stays in the group (the collective listens) until the parent ends it
  const pending = collective.allReduceSum(new Float64Array(2));
  collective.close();
  await pending.then(() => process.send({ digest: 'none', wrong: 1 }), (e) => process.send({ error: report(e) }));
}

async function child(mode, rank, size, rounds) {
  if (mode === 'close') return closeWhileWaiting(rank, size);
  const collective = bn.joinIpcGroup({ rank, size, timeoutMs: 10000 });
  const hash = createHash('sha256');
  let wrong = 0;
  try {
    for (let i = 0; i < rounds; i++) {
      if (mode === 'dies' && rank === 1 && i === 3) process.exit(7);
      const data = contribution(i, rank);
      await collective.allReduceSum(data);
      if (!bytes(data).equals(bytes(expected(i, size)))) wrong++;
      hash.update(bytes(data));
    }
    process.send({ digest: hash.digest('hex'), wrong });
  } catch (e) {
    process.send({ error: report(e) });
  } finally {
    collective.close();
  }
}

/** Each child's [rank, size] for joinIpcGroup: its place in the list, or what `claims` says. */
const joins = (claims, size) => (claims ? claims.split(',').map((c) => c.split('/').map(Number)) : Array.from({ length: size }, (_, rank) => [rank, size]));

function parent(mode, size, rounds, claims) {
  const started = Date.now();
  const children = joins(claims, size).map(([rank, joinSize]) => fork(__filename, ['child', mode, rank, joinSize, rounds]));
  size = children.length;
  const group = bn.serveIpcGroup(children, { timeoutMs: mode === 'close' ? 600_000 : 10000 });
  const reports = [];
  let exited = 0;
  if (mode === 'close') children[0].on('exit', () => children.slice(1).forEach((c) => c.kill()));
  children.forEach((c, rank) => {
    c.on('message', (m) => (reports[rank] = m));
    c.on('exit', () => {
      if (++exited < size) return;
      group.close();
      const ok = reports.filter((r) => r && r.digest);
      console.log(JSON.stringify({
        seconds: (Date.now() - started) / 1000,
        agree: ok.length === size && ok.every((r) => r.digest === ok[0].digest),
        wrong: ok.reduce((n, r) => n + r.wrong, 0),
        errors: reports.filter((r) => r && r.error).map((r) => r.error),
      }));
    });
  });
}

const [role, ...rest] = process.argv.slice(2);
if (role === 'child') child(rest[0], Number(rest[1]), Number(rest[2]), Number(rest[3]));
else if (role === 'claims') parent('sums', 0, 5, rest[0]);
else parent(role, Number(rest[0] || 3), Number(rest[1] || 50));
