/**
 * scripts/install.js, the install step (README "Install"), in a scratch copy of the package: the
 * real node-gyp-build, with a stand-in node-gyp whose output and exit status each test chooses,
 * so every branch runs in well under a second and without a compiler. The install always exits
 * 0; a build that fails says one line and leaves its reason in build/install-failure.txt.
 */
import { spawnSync } from 'child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { createRequire } from 'module';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { afterAll, describe, expect, test } from 'vitest';

import { packageRoot } from '../lib/loader';
import { cleanEnv } from './helpers/child';

const require = createRequire(import.meta.url);
const root = packageRoot();
const platform = `${process.platform}-${process.arch}`;

/** What the stand-in node-gyp prints and how it exits. */
interface Gyp {
  status: number;
  stdout?: string;
  stderr?: string;
}

/** A compile that fails as a compiler without OpenMP makes it fail: make's progress on stdout, the errors on stderr. */
const FAILED_COMPILE: Gyp = {
  status: 1,
  stdout: "make: Entering directory '/app/node_modules/batchnorm/build'\n  CXX(target) Release/obj.target/batchnorm/native/src/binding.o\n",
  stderr: "../native/src/binding.cpp:1:10: fatal error: omp.h: No such file or directory\ngyp ERR! stack Error: `make` failed with exit code: 2\n",
};
const REASON = '`make` failed with exit code: 2: ../native/src/binding.cpp:1:10: fatal error: omp.h: No such file or directory';

const scratch: string[] = [];
afterAll(() => scratch.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/**
 * A package folder as npm installs it: scripts/install.js, node-gyp-build (and its command on
 * PATH, as npm puts it), the stand-in node-gyp, and a prebuild that loads, one that does not, or none.
 */
function installedPackage(prebuild: 'loads' | 'broken' | 'none', gyp: Gyp): string {
  const dir = mkdtempSync(join(tmpdir(), 'batchnorm-install-'));
  scratch.push(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'batchnorm', version: '0.0.0' }));
  mkdirSync(join(dir, 'scripts'));
  cpSync(join(root, 'scripts', 'install.js'), join(dir, 'scripts', 'install.js'));
  cpSync(dirname(require.resolve('node-gyp-build/package.json')), join(dir, 'node_modules', 'node-gyp-build'), { recursive: true });
  mkdirSync(join(dir, 'node_modules', '.bin'));
  symlinkSync('../node-gyp-build/build-test.js', join(dir, 'node_modules', '.bin', 'node-gyp-build-test'));

  const gypDir = join(dir, 'node_modules', 'node-gyp');
  mkdirSync(join(gypDir, 'bin'), { recursive: true });
  writeFileSync(join(gypDir, 'package.json'), JSON.stringify({ name: 'node-gyp', bin: { 'node-gyp': 'bin/node-gyp.js' } }));
  const script = `require('fs').writeFileSync(${JSON.stringify(join(dir, 'gyp-ran'))}, process.argv.slice(2).join(' '));
process.stdout.write(${JSON.stringify(gyp.stdout ?? '')});
process.stderr.write(${JSON.stringify(gyp.stderr ?? '')});
process.exitCode = ${gyp.status};`;
  writeFileSync(join(gypDir, 'bin', 'node-gyp.js'), script);
  chmodSync(join(gypDir, 'bin', 'node-gyp.js'), 0o755);

  if (prebuild !== 'none') {
    const folder = join(dir, 'prebuilds', platform);
    mkdirSync(folder, { recursive: true });
    const file = join(folder, 'batchnorm.node');
    if (prebuild === 'loads') cpSync(require('node-gyp-build').resolve(root), file);
    else writeFileSync(file, 'not an ELF file');
  }
  return dir;
}

/** Runs the install step in `dir` as npm would (its .bin on PATH), with these npm settings. */
function install(dir: string, npmConfig: Record<string, string> = {}) {
  const env = Object.fromEntries(Object.entries(cleanEnv()).filter(([k]) => !k.startsWith('npm_config_') && k !== 'BATCHNORM'));
  env.PATH = `${join(dir, 'node_modules', '.bin')}:${process.env.PATH}`;
  for (const [k, v] of Object.entries(npmConfig)) env[`npm_config_${k}`] = v;
  const r = spawnSync(process.execPath, [join(dir, 'scripts', 'install.js')], { cwd: dir, env, encoding: 'utf8', timeout: 30_000 });
  const failureFile = join(dir, 'build', 'install-failure.txt');
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    built: existsSync(join(dir, 'gyp-ran')),
    failure: existsSync(failureFile) ? readFileSync(failureFile, 'utf8') : null,
  };
}

const jsLine = (reason: string) =>
  `batchnorm: no usable prebuilt binary for ${platform} and building from source failed (${reason}); the JavaScript backend will be used.\n`;

describe('scripts/install.js', () => {
  test('a prebuild that loads: nothing is built and nothing printed', () => {
    const r = install(installedPackage('loads', FAILED_COMPILE));
    expect(r).toMatchObject({ status: 0, stdout: '', stderr: '', built: false, failure: null });
  });

  test.each(['none', 'broken'] as const)('prebuild %s, the build fails: exit 0, one line and no build log, the reason recorded', (prebuild) => {
    const r = install(installedPackage(prebuild, FAILED_COMPILE));
    expect(r).toMatchObject({ status: 0, stdout: jsLine(REASON), stderr: '', built: true, failure: `${REASON}\n` });
  });

  test('a build that fails without a telling line names its exit status', () => {
    const r = install(installedPackage('none', { status: 3, stdout: 'something\n' }));
    expect(r).toMatchObject({ status: 0, stdout: jsLine('node-gyp-build exited with status 3'), failure: 'node-gyp-build exited with status 3\n' });
  });

  test("the build succeeds: nothing printed, and an earlier install's failure file is removed", () => {
    const dir = installedPackage('none', { status: 0, stdout: FAILED_COMPILE.stdout, stderr: 'gyp info ok\n' });
    mkdirSync(join(dir, 'build'));
    writeFileSync(join(dir, 'build', 'install-failure.txt'), 'an earlier failure\n');
    const r = install(dir);
    expect(r).toMatchObject({ status: 0, stdout: '', stderr: '', built: true, failure: null });
  });

  test('--loglevel=verbose shows node-gyp\'s and make\'s log as well as the line', () => {
    const r = install(installedPackage('none', FAILED_COMPILE), { loglevel: 'verbose' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${FAILED_COMPILE.stdout}${jsLine(REASON)}`);
    expect(r.stderr).toContain(FAILED_COMPILE.stderr);
  });

  test('--build-from-source builds even when a prebuild loads; when that build fails, the line says the prebuild is used', () => {
    const r = install(installedPackage('loads', FAILED_COMPILE), { build_from_source: 'true' });
    expect(r).toMatchObject({ status: 0, stderr: '', built: true, failure: `${REASON}\n` });
    expect(r.stdout).toBe(`batchnorm: building from source failed (${REASON}); the prebuilt binary for ${platform} will be used.\n`);
  });

  test('--build-from-source with a build that succeeds: nothing printed', () => {
    const r = install(installedPackage('loads', { status: 0 }), { build_from_source: 'true' });
    expect(r).toMatchObject({ status: 0, stdout: '', stderr: '', built: true, failure: null });
  });
});
