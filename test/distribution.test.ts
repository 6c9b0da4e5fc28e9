/**
 * Distribution (SPEC sections 1 and 6): node-gyp and CMake build the same addon from the one
 * source list, and each prebuilt binary in prebuilds/ loads on any mainstream glibc Linux:
 * it needs only glibc (2.28 or older) and what ships beside it, and it runs with threads where
 * the system has no OpenMP runtime at all.
 *
 * The prebuild checks run when prebuilds/ exists (`npm run build:prebuilds`);
 * BATCHNORM_REQUIRE_PREBUILDS=1 (CI) makes a missing prebuild a failure instead.
 */
import { execFileSync, spawnSync } from 'child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'fs';
import { createRequire } from 'module';
import { arch, tmpdir } from 'os';
import { dirname, join, relative } from 'path';
import { afterAll, describe, expect, test } from 'vitest';

import { packageRoot } from '../lib/loader';
import { compareVersions, dynamicSymbols, machine, needed, runpath, versionNumbers } from './helpers/elf';

const require = createRequire(import.meta.url);
const root = packageRoot();
const list = JSON.parse(readFileSync(join(root, 'sources.json'), 'utf8'));
const isas: Record<string, { arch: string; sources: string[]; flags: string[] }> = list.isa;
const allSources: string[] = [...list.common, ...Object.values(isas).flatMap((i) => i.sources), ...list.portable.sources];

const scratch: string[] = [];
afterAll(() => scratch.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/** The C++ sources under a folder, relative to the package root. */
function cppFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? cppFiles(join(dir, e.name)) : /\.(cpp|cc)$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

describe('one source list for both build systems', () => {
  test('every C++ source under native/ is in sources.json exactly once', () => {
    expect([...allSources].sort()).toEqual(cppFiles('native').sort());
  });

  test('binding.gyp and CMakeLists.txt read sources.json and name no source file themselves', () => {
    const gyp = readFileSync(join(root, 'binding.gyp'), 'utf8');
    const cmake = readFileSync(join(root, 'CMakeLists.txt'), 'utf8');
    expect(gyp).toContain('node scripts/sources.js');
    expect(cmake).toMatch(/file\(READ .*sources\.json/);
    for (const text of [gyp, cmake]) expect(text).not.toMatch(/\.(cpp|cc)\b/);
  });

  /** Source -> the flags of sources.json that its compile command carries, per build system. */
  type Configured = Record<string, string[]>;
  const ourFlags: string[] = [...list.cflags, ...Object.values(isas).flatMap((i) => i.flags)];
  const ours = (command: string[]) => [...new Set(command.filter((f) => ourFlags.includes(f)))].sort();

  /** A copy of the build inputs, so configuring leaves build/ alone. */
  function stage(): string {
    const dir = tempDir('batchnorm-configure-');
    for (const f of ['package.json', 'binding.gyp', 'CMakeLists.txt', 'sources.json', 'native']) cpSync(join(root, f), join(dir, f), { recursive: true });
    mkdirSync(join(dir, 'scripts'));
    cpSync(join(root, 'scripts', 'sources.js'), join(dir, 'scripts', 'sources.js'));
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    return dir;
  }

  /** Make variable `name` of a gyp-generated .mk file, as a list. */
  const makeList = (mk: string, name: string) =>
    (new RegExp(`^${name} :=((?:.*\\\\\\n)*.*)$`, 'm').exec(mk)?.[1] ?? '').split(/\s+/).filter((w) => w && w !== '\\').map((w) => w.replace(/^'|'$/g, ''));

  function gypConfigured(targetArch: string): Configured {
    const dir = stage();
    const nodedir = process.env.npm_config_nodedir ?? dirname(dirname(process.execPath));
    execFileSync(process.execPath, [require.resolve('node-gyp/bin/node-gyp.js'), 'configure', `--arch=${targetArch}`, `--nodedir=${nodedir}`], {
      cwd: dir,
      env: { ...process.env, npm_config_batchnorm_portable: 'true' },
      stdio: 'ignore',
    });
    const out: Configured = {};
    for (const file of readdirSync(join(dir, 'build')).filter((f) => f.endsWith('.target.mk'))) {
      const mk = readFileSync(join(dir, 'build', file), 'utf8');
      const flags = [...makeList(mk, 'CFLAGS_Release'), ...makeList(mk, 'CFLAGS_CC_Release')];
      for (const obj of makeList(mk, 'OBJS')) {
        const source = allSources.find((s) => obj.endsWith(`/${s.replace(/\.(cpp|cc)$/, '.o')}`));
        if (source) out[source] = ours(flags);
      }
    }
    return out;
  }

  function cmakeConfigured(targetArch: string): Configured {
    const dir = stage();
    execFileSync('cmake', ['-S', dir, '-B', join(dir, 'cmake'), '-DCMAKE_EXPORT_COMPILE_COMMANDS=ON', `-DNODE_ARCH=${targetArch}`, '-DBATCHNORM_PORTABLE=ON'], {
      stdio: 'ignore',
    });
    const commands: Array<{ file: string; command: string }> = JSON.parse(readFileSync(join(dir, 'cmake', 'compile_commands.json'), 'utf8'));
    return Object.fromEntries(commands.map((c) => [relative(realpathSync(dir), c.file), ours(c.command.split(/\s+/))]));
  }

  // CMake is only needed for `npm run build:cmake`; the README's test command must pass without it.
  const hasCmake = spawnSync('cmake', ['--version']).status === 0;
  test.skipIf(!hasCmake).each(['x64', 'arm64'])('%s: node-gyp and CMake compile the same files with the same flags', (targetArch) => {
    const gyp = gypConfigured(targetArch);
    const cmake = cmakeConfigured(targetArch);
    expect(Object.keys(gyp).sort()).toEqual(Object.keys(cmake).sort());
    expect(gyp).toEqual(cmake);
    for (const isa of Object.values(isas)) {
      for (const source of isa.sources) expect(source in gyp).toBe(isa.arch === targetArch);
    }
  });
});

const PLATFORMS = [
  { dir: 'linux-x64', arch: 'x64', machine: /X86-64/ },
  { dir: 'linux-arm64', arch: 'arm64', machine: /AArch64/ },
];
const ADDON = 'batchnorm.glibc.node';
const GOMP = 'libgomp.so.1';
/** glibc's own libraries: every glibc system has them. */
const GLIBC_LIBRARIES = /^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|ld-linux-(x86-64|aarch64)\.so\.[12])$/;
const requirePrebuilds = process.env.BATCHNORM_REQUIRE_PREBUILDS === '1';
const present = PLATFORMS.filter((p) => existsSync(join(root, 'prebuilds', p.dir)));

describe.skipIf(!requirePrebuilds && present.length === 0)('prebuilt binaries', () => {
  const checked = (requirePrebuilds ? PLATFORMS : present).map((p) => [`prebuilds/${p.dir}`, p] as const);
  describe.each(checked)('%s', (_name, { dir, machine: expectedMachine }) => {
    const folder = join(root, 'prebuilds', dir);
    const files = () => readdirSync(folder).map((f) => join(folder, f));

    test(`holds ${ADDON} and ${GOMP}, both for this architecture`, () => {
      expect(readdirSync(folder).sort()).toEqual([ADDON, GOMP]);
      for (const file of files()) expect(machine(file)).toMatch(expectedMachine);
    });

    test("needs only glibc's libraries and what ships beside it", () => {
      const beside = readdirSync(folder);
      for (const file of files()) {
        const foreign = needed(file).filter((lib) => !GLIBC_LIBRARIES.test(lib) && !beside.includes(lib));
        expect(foreign, file).toEqual([]);
      }
      expect(runpath(join(folder, ADDON))).toBe('$ORIGIN');
    });

    test('needs glibc 2.28 at most, and no libstdc++ or libgcc_s versions', () => {
      for (const file of files()) {
        const versions = [...new Set(dynamicSymbols(file).filter((s) => !s.defined && s.version).map((s) => s.version))];
        const glibc = versions.filter((v) => v.startsWith('GLIBC_')).map(versionNumbers);
        const newest = glibc.sort(compareVersions).pop() ?? [];
        expect(compareVersions(newest, [2, 28]), `${file} needs GLIBC_${newest.join('.')}`).toBeLessThanOrEqual(0);
        expect(versions.filter((v) => /^(GLIBCXX|CXXABI|GCC)_/.test(v)), file).toEqual([]);
      }
    });

    test(`${GOMP} defines every OpenMP symbol the addon needs, at the version it needs`, () => {
      const offered = new Set(dynamicSymbols(join(folder, GOMP)).filter((s) => s.defined).map((s) => `${s.name}@${s.version}`));
      const wanted = dynamicSymbols(join(folder, ADDON)).filter((s) => !s.defined && /^(GOMP|OMP)_/.test(s.version));
      expect(wanted.length).toBeGreaterThan(0);
      for (const s of wanted) expect(offered.has(`${s.name}@${s.version}`), `${s.name}@${s.version}`).toBe(true);
    });

    test('leaves no symbol of the glibc compatibility layer unresolved', () => {
      const unresolved = dynamicSymbols(join(folder, ADDON)).filter((s) => !s.defined && /^__(wrap|real)_/.test(s.name));
      expect(unresolved).toEqual([]);
    });
  });

  const host = PLATFORMS.find((p) => p.arch === arch());
  test.runIf(host && (requirePrebuilds || present.includes(host)))(
    'loads where the system has no libgomp: native backend, OpenMP threads, correct results',
    () => {
      const folder = join(root, 'prebuilds', host!.dir);
      // Every libgomp the dynamic loader could find, hidden in a private mount namespace.
      const systemCopies = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' })
        .split('\n')
        .flatMap((line) => /libgomp\.so.* => (\S+)/.exec(line)?.[1] ?? [])
        .flatMap((f) => [f, realpathSync(f)]);
      expect(systemCopies.length, 'this check needs a system libgomp to hide').toBeGreaterThan(0);
      const hide = [...new Set(systemCopies)].map((f) => `mount --bind /dev/null ${f}`).join(' && ');
      const check = `${process.execPath} ${join(root, 'scripts', 'check-package.js')} ${root}`;
      const unshare = process.getuid?.() === 0 ? ['-m'] : ['-rm'];
      const r = spawnSync('unshare', [...unshare, 'sh', '-c', `${hide} && ${check}`], {
        env: { ...process.env, PREBUILDS_ONLY: '1', BATCHNORM_BACKEND: 'native', BATCHNORM_NUM_THREADS: '4' },
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout);
      expect(report.info).toMatchObject({ backend: 'native', threads: 4 });
      expect(report.libraries.sort()).toEqual([join(folder, ADDON), join(folder, GOMP)]);
      expect(report.ompThreads).toBeGreaterThanOrEqual(3);
      expect(report.maxError).toBeLessThanOrEqual(1e-5);
      expect(report.nativeError).toMatch(/^RangeError: Expected threads/);
    },
  );
});
