/**
 * What `npm pack` ships (package.json "files" and the prepack hook), packed from a scratch copy
 * of the package: every file that package.json's entry points and types name, the native
 * sources and build files of a source build, the install script and the prebuilds; nothing else
 * (no tests, benchmarks or examples), and no file of dist/ that the TypeScript build no longer makes.
 */
import { spawnSync } from 'child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join, relative } from 'path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { packageRoot } from '../lib/loader';

const root = packageRoot();
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'batchnorm-pack-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every file under `folder`, relative to the package root. */
function filesUnder(folder: string): string[] {
  return readdirSync(join(root, folder), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(folder, e.name)) : [join(folder, e.name)],
  );
}

let packed: string[] = [];
beforeAll(() => {
  for (const f of ['package.json', 'tsconfig.json', 'README.md', 'LICENSE', 'binding.gyp', 'CMakeLists.txt', 'sources.json', 'lib', 'native', 'scripts', 'examples', 'bench/cli.ts', 'test/install-script.test.ts']) {
    cpSync(join(root, f), join(dir, f), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  // What an earlier build left: a module since removed, and a prebuild.
  mkdirSync(join(dir, 'dist'));
  writeFileSync(join(dir, 'dist', 'removed-module.js'), '');
  writeFileSync(join(dir, 'dist', 'removed-module.d.ts'), '');
  mkdirSync(join(dir, 'prebuilds', 'linux-x64'), { recursive: true });
  writeFileSync(join(dir, 'prebuilds', 'linux-x64', 'batchnorm.glibc.node'), '');
  // npm pack runs the prepack hook (the TypeScript build), as for a publish.
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--silent'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`npm pack failed: ${r.stderr}`);
  packed = JSON.parse(r.stdout)[0].files.map((f: { path: string }) => f.path);
}, 120_000);

describe('npm pack', () => {
  test('ships every file that main, types, exports and typesVersions name', () => {
    const exported = Object.values(manifest.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e as object)));
    const named = [manifest.main, manifest.types, ...exported, ...Object.values(manifest.typesVersions['*']).flat()];
    for (const file of named as string[]) expect(packed).toContain(relative('.', file));
    expect(packed).toEqual(expect.arrayContaining(['dist/index.d.ts', 'dist/tfjs/index.d.ts', 'dist/tfjs/index.js']));
  });

  test('ships what a source build and the install step need, and the prebuilds', () => {
    const need = ['binding.gyp', 'CMakeLists.txt', 'sources.json', 'scripts/install.js', 'scripts/sources.js', ...filesUnder('native'), 'prebuilds/linux-x64/batchnorm.glibc.node'];
    expect(packed).toEqual(expect.arrayContaining(need));
    expect(manifest.scripts.install).toBe('node scripts/install.js');
  });

  test('ships the license text that package.json names', () => {
    expect(manifest.license).toBe('MIT');
    expect(packed).toContain('LICENSE');
  });

  test('ships nothing else: no tests, benchmarks, examples or TypeScript sources', () => {
    const allowed = /^(dist\/.+|native\/.+|prebuilds\/.+|scripts\/(install|sources)\.js|binding\.gyp|CMakeLists\.txt|sources\.json|package\.json|README\.md|LICENSE)$/;
    expect(packed.filter((f) => !allowed.test(f))).toEqual([]);
  });

  test("ships source maps that carry their TypeScript (lib/ is not shipped, so a map that only named it would lead nowhere)", () => {
    const maps = packed.filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(0);
    for (const map of maps) expect(JSON.parse(readFileSync(join(dir, map), 'utf8')).sourcesContent?.[0], map).toMatch(/\S/);
  });

  test('ships no dist/ file of a module that the build no longer makes', () => {
    expect(packed.filter((f) => f.startsWith('dist/removed-module'))).toEqual([]);
  });
});
