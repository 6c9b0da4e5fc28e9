/**
 * SPEC section 6 in child processes, against the built package (dist/, as users load it):
 * BATCHNORM_BACKEND, BATCHNORM_ISA, the thread-count variables, a missing or broken binary,
 * and worker threads loading the addon at the same time.
 */
import { execFileSync, spawnSync } from 'child_process';
import { cpSync, existsSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { availableParallelism, tmpdir } from 'os';
import { join } from 'path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { backendInfo } from '../lib/index';
import { DEFAULT_SPIN_COUNT, packageRoot } from '../lib/loader';
import { cleanEnv, onGlibc } from './helpers/child';

const root = packageRoot();

beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first');
});

/** backendInfo() of a fresh process that loads the package from `dir`. */
function infoIn(dir: string, env: Record<string, string> = {}) {
  const out = execFileSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(dir)}).backendInfo()))`], {
    env: cleanEnv(env),
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

const supported = (infoIn(root) as { isa: string }).isa;

describe('BATCHNORM_BACKEND', () => {
  test('unset: native, with the best ISA', () => {
    const info = infoIn(root);
    expect(info.backend).toBe('native');
    expect(info.fallbackReason).toBeUndefined();
    expect(info.version).toBe(backendInfo().version);
  });

  test('js: the JavaScript backend, saying why', () => {
    expect(infoIn(root, { BATCHNORM_BACKEND: 'js' })).toMatchObject({ backend: 'js', isa: 'js', threads: 1, fallbackReason: 'BATCHNORM_BACKEND=js' });
  });
});

describe('OpenMP wait policy', () => {
  /** What libgomp read at load (the addon's info()), and what the process environment holds afterwards. */
  function policyIn(env: Record<string, string> = {}) {
    const script = `const { load } = require(${JSON.stringify(join(root, 'dist', 'loader.js'))});
      const { native } = load();
      const { waitPolicy, spinCount } = native.info();
      console.log(JSON.stringify({ atLoad: { waitPolicy, spinCount }, after: [process.env.OMP_WAIT_POLICY ?? null, process.env.GOMP_SPINCOUNT ?? null] }))`;
    return JSON.parse(execFileSync(process.execPath, ['-e', script], { env: cleanEnv(env), encoding: 'utf8' }));
  }

  test('a short spin unless the user chose a policy, set only while the addon loads', () => {
    expect(policyIn()).toEqual({ atLoad: { waitPolicy: '', spinCount: DEFAULT_SPIN_COUNT }, after: [null, null] });
  });

  test('the user\'s OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone', () => {
    expect(policyIn({ OMP_WAIT_POLICY: 'passive' })).toEqual({ atLoad: { waitPolicy: 'passive', spinCount: '' }, after: ['passive', null] });
    expect(policyIn({ GOMP_SPINCOUNT: '0' })).toEqual({ atLoad: { waitPolicy: '', spinCount: '0' }, after: [null, '0'] });
  });
});

describe('glibc malloc tuning (native/src/malloc_tuning.h)', () => {
  const tunedIn = (env: Record<string, string> = {}) =>
    execFileSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(join(root, 'dist', 'loader.js'))}).load().native.info().mallocTuned)`], {
      env: cleanEnv(env),
      encoding: 'utf8',
    }).trim();
  // AddressSanitizer (npm run test:asan preloads it) replaces malloc, and mallopt with it.
  const sanitized = (process.env.LD_PRELOAD ?? '').includes('asan');

  test.runIf(onGlibc && !sanitized)('on by default, so freed outputs stay mapped for the next ones', () => expect(tunedIn()).toBe('true'));

  test.each(['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_MAX_', 'GLIBC_TUNABLES'])('left to the user who set %s', (name) => {
    expect(tunedIn({ [name]: name === 'GLIBC_TUNABLES' ? 'glibc.malloc.trim_threshold=1048576' : '1048576' })).toBe('false');
  });
});

describe('BATCHNORM_ISA caps the kernels', () => {
  test('scalar', () => expect(infoIn(root, { BATCHNORM_ISA: 'scalar' }).isa).toBe('scalar'));
  test('the best ISA itself', () => expect(infoIn(root, { BATCHNORM_ISA: supported }).isa).toBe(supported));
  test('an ISA of another architecture falls to scalar', () => {
    const foreign = process.arch === 'arm64' ? 'avx2' : 'neon';
    expect(infoIn(root, { BATCHNORM_ISA: foreign }).isa).toBe('scalar');
  });
  test('avx512 on a CPU without it falls to the best below', () => {
    const info = infoIn(root, { BATCHNORM_ISA: 'avx512' });
    expect(info.isa).toBe(process.arch === 'x64' ? supported : 'scalar');
  });
});

describe('thread count', () => {
  test('BATCHNORM_NUM_THREADS wins over OMP_NUM_THREADS', () => {
    expect(infoIn(root, { BATCHNORM_NUM_THREADS: '3', OMP_NUM_THREADS: '2' }).threads).toBe(3);
  });
  test('OMP_NUM_THREADS', () => expect(infoIn(root, { OMP_NUM_THREADS: '2' }).threads).toBe(2));
  test('default: the available parallelism', () => expect(infoIn(root).threads).toBe(availableParallelism()));
  test('an invalid value is ignored', () => expect(infoIn(root, { BATCHNORM_NUM_THREADS: 'lots' }).threads).toBe(availableParallelism()));
  test("OMP_NUM_THREADS's list form: its first entry", () => expect(infoIn(root, { OMP_NUM_THREADS: '2,1' }).threads).toBe(2));
});

describe('a value SPEC section 6 does not give a variable', () => {
  /** The package's process warnings (BATCHNORM_ENV_IGNORED) when a fresh process loads it. */
  const warningsIn = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['-e', `require(${JSON.stringify(root)}).backendInfo()`], { env: cleanEnv(env), encoding: 'utf8' })
      .stderr.split('\n')
      .filter((line) => line.includes('[BATCHNORM_ENV_IGNORED]'));

  test.each([
    ['BATCHNORM_BACKEND', 'JS', 'native'],
    ['BATCHNORM_ISA', 'avx-512', supported],
    ['BATCHNORM_NUM_THREADS', '0', String(availableParallelism())],
  ])('%s=%s is ignored with a warning that names it', (name, value) => {
    const warnings = warningsIn({ [name]: value });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${name}="${value}" is ignored`);
    const info = infoIn(root, { [name]: value });
    expect([info.backend, info.isa, info.threads]).toEqual(['native', supported, availableParallelism()]);
  });

  test('documented values and unset or empty variables give no warning', () => {
    expect(warningsIn({ BATCHNORM_BACKEND: 'native', BATCHNORM_ISA: 'scalar', BATCHNORM_NUM_THREADS: '1' })).toEqual([]);
    expect(warningsIn({ BATCHNORM_BACKEND: '', BATCHNORM_ISA: '', BATCHNORM_NUM_THREADS: '' })).toEqual([]);
    expect(warningsIn({})).toEqual([]);
  });
});

describe('without a usable binary', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'batchnorm-fallback-'));
    cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
    cpSync(join(root, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('import falls back to JS and says why', () => {
    const info = infoIn(dir);
    expect(info.backend).toBe('js');
    expect(info.fallbackReason).toMatch(/native addon could not be loaded/);
  });

  test('a corrupt binary also falls back', () => {
    mkdirSync(join(dir, 'build', 'Release'), { recursive: true });
    writeFileSync(join(dir, 'build', 'Release', 'batchnorm.node'), 'not an ELF file');
    const info = infoIn(dir);
    expect(info.backend).toBe('js');
    expect(info.fallbackReason).toMatch(/could not be loaded/);
    rmSync(join(dir, 'build'), { recursive: true });
  });

  test('the JS fallback computes correct results', () => {
    const script = `const b = require(${JSON.stringify(dir)});
      const { y } = b.forwardTrain(new Float32Array([1, 2, 3, 4]), [2, 2]);
      console.log(JSON.stringify(Array.from(y, (v) => Math.round(v * 1000) / 1000)));`;
    const out = execFileSync(process.execPath, ['-e', script], { env: cleanEnv(), encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual([-1, -1, 1, 1]);
  });

  test('BATCHNORM_BACKEND=native makes the missing binary an error at import', () => {
    const r = spawnSync(process.execPath, ['-e', `try { require(${JSON.stringify(dir)}) } catch (e) { console.log(e.code); process.exit(3) }`], {
      env: cleanEnv({ BATCHNORM_BACKEND: 'native' }),
      encoding: 'utf8',
    });
    expect(r.status).toBe(3);
    expect(r.stdout.trim()).toBe('ERR_BATCHNORM_NATIVE_UNAVAILABLE');
  });
});

// Node.js unloads (dlclose) an addon that only a worker loaded when that worker exits; libgomp
// went with it while its threads, started for the worker's parallel kernels and for the libuv
// threads that ran its async ones, were still alive: they crashed the process (2 runs in 5
// before the addon was linked with -z nodelete, 5 in 5 with this round's allocation changes).
test('a worker that alone loads the addon runs threaded kernels, sync and async, and the process outlives its exit', () => {
  const script = `
    const { Worker, isMainThread, parentPort } = require('worker_threads');
    if (isMainThread) {
      const w = new Worker(__filename);
      w.on('message', (m) => console.log(m));
      w.on('error', (e) => { console.log('worker error', e.message); process.exit(1); });
      w.on('exit', () => setTimeout(() => console.log('ok'), 300)); // the pool's threads wake meanwhile
    } else {
      const b = require(${JSON.stringify(root)});
      b.setNumThreads(2);
      const shape = [8, 64, 64, 64]; // 8 MB: parallel kernels
      const x = new Float32Array(8 * 64 * 64 * 64).fill(1.5);
      const y = b.forwardTrain(x, shape).y;
      b.forwardTrainAsync(x, shape).then((r) => parentPort.postMessage(b.backendInfo().backend + ' ' + (r.y[7] === y[7])));
    }`;
  const file = join(mkdtempSync(join(tmpdir(), 'batchnorm-worker-exit-')), 'worker-exit.js');
  writeFileSync(file, script);
  for (let run = 0; run < 3; run++) {
    const r = spawnSync(process.execPath, [file], { env: cleanEnv(), encoding: 'utf8', timeout: 60_000 });
    expect({ run, signal: r.signal, status: r.status, stdout: r.stdout.trim() }).toEqual({ run, signal: null, status: 0, stdout: 'native true\nok' });
  }
});

test('four worker threads load the addon at once, compute, and exit cleanly', () => {
  const script = `
    const { Worker, isMainThread, parentPort } = require('worker_threads');
    const shape = [16, 8, 32, 32];
    const data = () => Float32Array.from({ length: 16 * 8 * 1024 }, (_, i) => Math.sin(i) * 3 + 1);
    if (isMainThread) {
      const b = require(${JSON.stringify(root)});
      const expected = Array.from(b.forwardTrain(data(), shape).saveInvStd);
      let done = 0;
      for (let i = 0; i < 4; i++) {
        const w = new Worker(__filename);
        w.on('message', (m) => {
          if (m.backend !== 'native' || JSON.stringify(m.invStd) !== JSON.stringify(expected)) { console.log('mismatch', JSON.stringify(m)); process.exit(1); }
          if (++done === 4) console.log('ok');
        });
        w.on('error', (e) => { console.log('worker error', e.message); process.exit(1); });
      }
    } else {
      const b = require(${JSON.stringify(root)});
      parentPort.postMessage({ backend: b.backendInfo().backend, invStd: Array.from(b.forwardTrain(data(), shape).saveInvStd) });
    }`;
  const file = join(mkdtempSync(join(tmpdir(), 'batchnorm-workers-')), 'workers.js');
  writeFileSync(file, script);
  const r = spawnSync(process.execPath, [file], { env: cleanEnv(), encoding: 'utf8', timeout: 60_000 });
  expect(r.stdout.trim()).toBe('ok');
  expect(r.status).toBe(0);
});
