/** The interface every benchmarked backend implements. */
import type { Case, Op } from '../workload';

/** Read-only inputs shared by every backend in a cell. */
export interface Inputs {
  x: Float32Array;
  dy: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
  /** Batch statistics of x (from the native forwardTrain), for backward. */
  saveMean: Float32Array;
  saveInvStd: Float32Array;
  eps: number;
}

export interface Cell {
  op: Op;
  c: Case;
  threads: number;
  inputs: Inputs;
}

/**
 * What run() returns: nothing, and the bench times the call; or the call's own milliseconds as
 * the backend measured them (a peer in another process, so that the pipe is not timed).
 */
export type RunResult = void | { ms: number };

/** One backend set up for one cell: run() is what is timed. */
export interface Prepared {
  run(): RunResult | Promise<RunResult>;
  /**
   * A backend in another process: `untimed` calls, then one that it times, all in that process,
   * so that the warm-up calls follow each other as closely as a loop's (no pipe between them).
   */
  runAfter?(untimed: number): Promise<{ ms: number }>;
  /** The main output of the last run (y, or dx for backward and trainStep), for the correctness check. */
  output(): Float32Array | Promise<Float32Array>;
  dispose(): void | Promise<void>;
}

export interface BenchBackend {
  name: string;
  /** Why this backend cannot run the cell, or undefined when it can. */
  unsupported(cell: Cell): string | undefined;
  prepare(cell: Cell): Promise<Prepared>;
  /** Threads it really uses at a requested count (peers may be single-threaded). */
  threadsUsed(requested: number): number;
}
