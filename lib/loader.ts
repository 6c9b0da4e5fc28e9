/**
 * Chooses the backend once, at import (SPEC section 6). node-gyp-build finds the binary: the
 * local build in build/ when there is one (PREBUILDS_ONLY=1 skips it), else a matching prebuild
 * in prebuilds/. When the one it finds does not load, or there is none, the
 * JavaScript backend takes over and `fallbackReason` says why; importing never throws for
 * that, unless BATCHNORM_BACKEND=native asked for the native backend explicitly.
 * BATCHNORM_BINARY=path/to/addon.node loads that binary instead (tests of other builds).
 */
import { existsSync, readFileSync } from 'fs';
import * as os from 'os';
import { dirname, join, resolve } from 'path';

import { BatchNormRangeError } from './errors';
import { jsBackend } from './js-backend';
import { nativeBackend, type NativeBinding } from './native-backend';
import type { Backend } from './plan';

/** The package root: the nearest folder above this file with batchnorm's package.json. */
export function packageRoot(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'batchnorm') return dir;
    if (dirname(dir) === dir) throw new Error(`batchnorm: no package.json above ${__dirname}`);
  }
}

/** A thread count from an environment variable: an integer in [1, 4096], or undefined. */
function positiveInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return undefined;
  const n = Number(value);
  return n >= 1 && n <= 4096 ? n : undefined;
}

/**
 * Warns (a process warning, code BATCHNORM_ENV_IGNORED) about each of the package's variables
 * that is set to a value SPEC section 6 does not give it, which the loader then ignores: a
 * `BATCHNORM_BACKEND=JS` that silently stays native would otherwise mislead a comparison.
 * Importing still never throws for the environment.
 */
function warnIgnoredVariables(env: NodeJS.ProcessEnv): void {
  const ignored = (name: string, expected: string) =>
    process.emitWarning(`batchnorm: ${name}=${JSON.stringify(env[name])} is ignored (expected ${expected})`, { code: 'BATCHNORM_ENV_IGNORED' });
  const oneOf = (name: string, values: readonly string[]) => {
    const value = env[name];
    if (value && !values.includes(value)) ignored(name, values.join(' or '));
  };
  oneOf('BATCHNORM_BACKEND', ['js', 'native']);
  oneOf('BATCHNORM_ISA', ['avx512', 'avx2', 'neon', 'scalar']);
  if (env.BATCHNORM_NUM_THREADS && positiveInt(env.BATCHNORM_NUM_THREADS) === undefined) ignored('BATCHNORM_NUM_THREADS', 'an integer in [1, 4096]');
}

/** The CPUs this process may use: os.availableParallelism (Node.js 18.14 on), else every CPU. */
function availableParallelism(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : Math.max(1, os.cpus().length);
}

/**
 * BATCHNORM_NUM_THREADS, else OMP_NUM_THREADS (its first entry: OpenMP's list form "4,2" gives
 * the outermost level first), else the machine's available parallelism.
 */
export function defaultThreads(env: NodeJS.ProcessEnv): number {
  return positiveInt(env.BATCHNORM_NUM_THREADS) ?? positiveInt(env.OMP_NUM_THREADS?.split(',')[0]) ?? availableParallelism();
}

export interface Loaded {
  backend: Backend;
  native: NativeBinding | null;
  fallbackReason?: string;
}

/** Why the install-time build failed, as scripts/install.js recorded it, or ''. */
function installFailure(root: string): string {
  const file = join(root, 'build', 'install-failure.txt');
  return existsSync(file) ? `; building it at install failed: ${readFileSync(file, 'utf8').trim()}` : '';
}

/**
 * The addon: the .node file that BATCHNORM_BINARY names when it is set (relative to the working
 * directory; for testing other builds, such as the sanitizer build of `npm run test:asan`),
 * else the one node-gyp-build finds.
 */
function loadNative(root: string, binary: string | undefined): NativeBinding {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (binary) return withShortSpin(() => require(resolve(binary)) as NativeBinding);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  return withShortSpin(() => nodeGypBuild(root) as NativeBinding);
}

/** How many times libgomp's idle threads poll before they sleep, unless the user chose. */
export const DEFAULT_SPIN_COUNT = '1000';

/**
 * Loads the addon with a short OpenMP spin (GOMP_SPINCOUNT=DEFAULT_SPIN_COUNT), unless the user
 * chose a wait policy (OMP_WAIT_POLICY or GOMP_SPINCOUNT). By default libgomp's idle threads spin
 * for up to milliseconds after each parallel region: on a machine with few cores they take the
 * cores the JavaScript thread, other processes and the next call need, and a 2-thread call
 * measured 7-150x slower (2 vCPU Xeon: [64,256,14,14] forwardTrain 15-20 ms against 2.1-2.7 ms).
 * Sleeping at once (the passive policy) costs a wake-up per parallel region instead, a good part
 * of a small call: 1000 polls (tens of microseconds) keep the threads awake between
 * back-to-back calls ([256,1024] at 2 threads 15-30% faster than passive) and cost nothing
 * measurable when another process keeps a core busy. libgomp reads the variable once, when it
 * loads with the addon, so it is set only for that moment and never seen by child processes. No
 * effect where the process has loaded libgomp already (another addon), or in a worker thread
 * (whose process.env is a copy).
 */
function withShortSpin<T>(load: () => T): T {
  if (process.env.OMP_WAIT_POLICY !== undefined || process.env.GOMP_SPINCOUNT !== undefined) return load();
  process.env.GOMP_SPINCOUNT = DEFAULT_SPIN_COUNT;
  try {
    return load();
  } finally {
    delete process.env.GOMP_SPINCOUNT;
  }
}

export function load(env: NodeJS.ProcessEnv = process.env): Loaded {
  warnIgnoredVariables(env);
  const mode = env.BATCHNORM_BACKEND;
  if (mode === 'js') return { backend: jsBackend, native: null, fallbackReason: 'BATCHNORM_BACKEND=js' };
  const root = packageRoot();
  try {
    const native = loadNative(root, env.BATCHNORM_BINARY);
    native.configure(env.BATCHNORM_ISA ?? '', defaultThreads(env));
    return { backend: nativeBackend(native), native };
  } catch (e) {
    const reason = `native addon could not be loaded: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}${installFailure(root)}`;
    if (mode === 'native') {
      throw new BatchNormRangeError('ERR_BATCHNORM_NATIVE_UNAVAILABLE', `BATCHNORM_BACKEND=native but the ${reason}`);
    }
    return { backend: jsBackend, native: null, fallbackReason: reason };
  }
}
