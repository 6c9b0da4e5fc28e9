/**
 * Timing: every backend of a cell runs round-robin, one repetition at a time, so drift of the
 * machine hits all of them alike. A backend is done after 10 timed repetitions, or after 0.5 s
 * of timed runs and at least 3 repetitions, or after 2 s (a peer that takes seconds per call).
 *
 * Each timed call of a short op follows untimed calls of the same backend (WARM_MS of them): the
 * caches then hold what a loop of calls leaves there, not what the other backends just touched.
 * That is the state a training loop sees, and what decides in-cache cases. Calls over
 * WARM_BELOW_MS skip it: their own run time dwarfs any cache refill.
 *
 * A backend in another process (PyTorch, oneDNN) times each call itself and says how long it
 * took, so what is timed is the call, not the pipe to it.
 *
 * Between one backend's turn and the next, the run pauses SETTLE_MS: a peer's OpenMP threads
 * (libgomp's default wait policy) spin for about 10 ms of CPU after each of its calls (measured
 * for PyTorch here), and on a machine with few cores they would take the cores from whichever
 * backend runs next (ours, on 2 vCPUs: 3.8 ms instead of 2.0 ms after a 3 ms pause). Our own
 * threads poll for tens of microseconds, then sleep (lib/loader.ts).
 */
import type { Prepared } from './backends/types';

export const MIN_REPS = 3;
export const TARGET_REPS = 10;
export const TARGET_SECONDS = 0.5;
export const MAX_SECONDS = 2;
export const WARM_BELOW_MS = 50;
export const SETTLE_MS = 25;
/**
 * Untimed calls before a timed one: at least one, and enough to fill WARM_MS, so that the timed
 * call finds what a loop of calls leaves: a CPU awake from the pause, and for the paths that
 * allocate, a heap whose freed blocks the collector has handed back (a few calls in, every new
 * 1 MB output still came from fresh pages: 4.5x the call with a destination, against 1.1-1.4x
 * in a loop).
 */
export const WARM_MS = 10;
const WARM_MAX_CALLS = 50;
/**
 * Before a backend's first timed call, untimed calls for FIRST_WARM_MS (at least one, at most
 * FIRST_WARM_CALLS), however long each takes: a loop's heap is steady only after a few
 * allocations. Without them, the first two timed calls of a 25 MB output without destinations
 * still faulted in all of its pages (12 ms against 1.5-2.5 ms later): two of a cell's ten samples.
 */
export const FIRST_WARM_MS = 300;
const FIRST_WARM_CALLS = 5;

/** How many untimed calls come before a timed one, after a call that took `lastMs`. */
function warmCalls(lastMs: number, first: boolean): number {
  const perMs = (budget: number, most: number) => Math.min(most, Math.max(1, Math.ceil(budget / Math.max(lastMs, 1e-3))));
  const warm = lastMs >= WARM_BELOW_MS ? 0 : perMs(WARM_MS, WARM_MAX_CALLS);
  return first ? Math.max(warm, perMs(FIRST_WARM_MS, FIRST_WARM_CALLS)) : warm;
}

/** One timed call after `untimed` untimed ones, in the backend's own process when it has one. */
async function timeAfter(p: Prepared, untimed: number): Promise<number> {
  if (p.runAfter) return (await p.runAfter(untimed)).ms;
  for (let i = 0; i < untimed; i++) await p.run();
  return timeOnce(p);
}

const settle = () => new Promise<void>((resolve) => setTimeout(resolve, SETTLE_MS));

/** When a backend is done; the defaults above suit single ops, longer steps may ask for more. */
export interface Limits {
  minReps: number;
  targetReps: number;
  targetSeconds: number;
  maxSeconds: number;
}
export const DEFAULT_LIMITS: Limits = { minReps: MIN_REPS, targetReps: TARGET_REPS, targetSeconds: TARGET_SECONDS, maxSeconds: MAX_SECONDS };

export interface Summary {
  median: number; // ms
  p10: number;
  p90: number;
  reps: number;
}

export function summarize(ms: number[]): Summary {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
  // An even count's median is the mean of the middle two (rounding up took the slower one).
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, p10: at(0.1), p90: at(0.9), reps: s.length };
}

/** One call's milliseconds: as the backend measured them when it says, else around the call. */
export async function timeOnce(p: Prepared): Promise<number> {
  const start = process.hrtime.bigint();
  const own = await p.run();
  return own ? own.ms : Number(process.hrtime.bigint() - start) / 1e6;
}

/**
 * Times the prepared backends interleaved; returns each one's samples in ms. `firstMs` is each
 * backend's untimed first call (the warm-up that also checked its output).
 */
export async function timeInterleaved(prepared: Prepared[], firstMs: number[], onRep: () => void, limits: Limits = DEFAULT_LIMITS): Promise<number[][]> {
  const samples: number[][] = prepared.map(() => []);
  const spent = prepared.map(() => 0);
  const last = [...firstMs];
  const done = (k: number) => {
    const reps = samples[k].length;
    const { minReps, targetReps, targetSeconds, maxSeconds } = limits;
    return reps >= targetReps || (reps >= minReps && spent[k] >= targetSeconds * 1000) || spent[k] >= maxSeconds * 1000;
  };
  while (!prepared.every((_, k) => done(k))) {
    for (let k = 0; k < prepared.length; k++) {
      if (done(k)) continue;
      await settle();
      const ms = await timeAfter(prepared[k], warmCalls(last[k], samples[k].length === 0));
      samples[k].push(ms);
      spent[k] += ms;
      last[k] = ms;
      onRep();
    }
  }
  return samples;
}

/**
 * Largest |a - b| relative to max(1, max |b|): the SPEC section 5 form of the y/dx check. A NaN
 * anywhere, or outputs of different lengths, is NaN: no tolerance accepts it.
 */
export function relativeError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return NaN;
  let worst = 0;
  let scale = 1;
  for (let k = 0; k < b.length; k++) {
    scale = Math.max(scale, Math.abs(b[k]));
    const e = Math.abs(a[k] - b[k]);
    if (Number.isNaN(e)) return NaN; // a later element's error must not replace it
    if (e > worst) worst = e;
  }
  return worst / scale;
}
