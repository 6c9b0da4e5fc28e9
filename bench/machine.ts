import { cpus } from 'os';

/**
 * The machine a benchmark ran on, for its report: figures compare only within one machine (the
 * CPU model changes between sessions here), so every report names it.
 */
export function machine() {
  const all = cpus();
  return { date: new Date().toISOString(), cpu: all[0]?.model ?? 'unknown CPU', cores: all.length, node: process.version };
}
