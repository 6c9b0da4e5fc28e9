/**
 * The memory-bandwidth roof, measured in this process at the benchmark's thread counts by the
 * addon's STREAM-like probe: triad and copy on arrays 4x the last-level cache each (DRAM), and
 * triad on arrays that together fit in half of it (cache). The cache the probe trusts is at most
 * 32 MiB: a server's L3 may be reported as hundreds of MiB (a whole socket's mesh, shared with
 * other guests) while one core gets far less of it (Emerald Rapids, 300 MiB in sysfs: reads drop
 * to the DRAM rate past about 48 MiB).
 */
import { readFileSync } from 'fs';

import type { NativeBinding } from '../lib/native-backend';

export interface Roof {
  threads: number;
  dramTriad: number; // GB/s
  dramCopy: number;
  cacheTriad: number;
}

/** Last-level cache size in bytes, from sysfs (falls back to 32 MiB). */
export function lastLevelCacheBytes(): number {
  for (const index of [3, 2]) {
    try {
      const text = readFileSync(`/sys/devices/system/cpu/cpu0/cache/index${index}/size`, 'utf8').trim();
      const m = /^(\d+)([KMG]?)$/.exec(text);
      if (m) return Number(m[1]) * { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2] as '' | 'K' | 'M' | 'G'];
    } catch {
      // not on Linux, or no such cache level
    }
  }
  return 32 * 1024 ** 2;
}

const TRUSTED_CACHE_BYTES = 32 * 1024 ** 2;

export function measureRoof(binding: NativeBinding, threads: number, llcBytes: number): Roof {
  const cache = Math.min(llcBytes, TRUSTED_CACHE_BYTES);
  const dramFloats = Math.ceil((4 * cache) / 4);
  const cacheFloats = Math.floor(cache / 4 / 6);
  return {
    threads,
    dramTriad: binding.streamBandwidth('triad', dramFloats, threads, 5),
    dramCopy: binding.streamBandwidth('copy', dramFloats, threads, 5),
    cacheTriad: binding.streamBandwidth('triad', cacheFloats, threads, 40),
  };
}
