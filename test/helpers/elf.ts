/**
 * What an ELF shared object asks of the system, read with binutils' readelf (which reads any
 * architecture's ELF files, so the arm64 prebuild is checked on an x64 machine too).
 */
import { execFileSync } from 'child_process';

const readelf = (...args: string[]) => execFileSync('readelf', ['-W', ...args], { encoding: 'utf8' });

export interface DynamicSymbol {
  name: string;
  /** The symbol version, e.g. GLIBC_2.17, or '' when unversioned. */
  version: string;
  defined: boolean;
}

/** The e_machine field, e.g. 'Advanced Micro Devices X86-64' or 'AArch64'. */
export function machine(file: string): string {
  return /Machine:\s+(.+)/.exec(readelf('-h', file))?.[1].trim() ?? '';
}

/** DT_NEEDED: the libraries the dynamic loader must find. */
export function needed(file: string): string[] {
  return [...readelf('-d', file).matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)].map((m) => m[1]);
}

/** DT_RUNPATH, or '' when there is none. */
export function runpath(file: string): string {
  return /\(RUNPATH\)\s+Library runpath: \[(.*)\]/.exec(readelf('-d', file))?.[1] ?? '';
}

/** The dynamic symbol table: what the object needs (undefined) and what it offers. */
export function dynamicSymbols(file: string): DynamicSymbol[] {
  const symbols: DynamicSymbol[] = [];
  // "  4: 0000000000000000  0 FUNC  GLOBAL DEFAULT  UND omp_get_num_threads@OMP_1.0 (3)"
  const row = /^\s*\d+:\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(\S+)\s+([^@\s]+)(?:@@?(\S+))?/;
  for (const line of readelf('--dyn-syms', file).split('\n')) {
    const m = row.exec(line);
    if (m && m[2]) symbols.push({ name: m[2], version: m[3] ?? '', defined: m[1] !== 'UND' });
  }
  return symbols;
}

/** "GLIBC_2.28" -> [2, 28], to compare versions numerically. */
export function versionNumbers(version: string): number[] {
  return version.replace(/^[A-Z_]+_/, '').split('.').map(Number);
}

export function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
