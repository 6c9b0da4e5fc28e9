/** The native backend: forwards validated plans to the N-API addon (native/src/binding.cpp). */
import type { ExchangeViews } from './collective/kernel-exchange';
import { claimUnwritten } from './outputs';
import type { Backend, BackwardPlan, Geometry, InferencePlan, MomentsPlan, SumsPlan, TrainPlan } from './plan';

/** What the addon reports about itself. */
export interface NativeInfo {
  isa: 'avx512' | 'avx2' | 'neon' | 'scalar';
  threads: number;
  supportedIsas: string;
  openmp: boolean;
  /** OMP_WAIT_POLICY as the environment had it when the addon (and libgomp) loaded; '' when unset. */
  waitPolicy: string;
  /** GOMP_SPINCOUNT likewise (lib/loader.ts sets it while loading unless the user chose). */
  spinCount: string;
  /** Whether the addon tuned glibc's malloc to keep freed memory mapped (native/src/malloc_tuning.h). */
  mallocTuned: boolean;
  /** Ops touching more bytes than this write their output with streaming (non-temporal) stores. */
  streamingBytes: number;
}

type F32 = Float32Array;
type Opt = Float32Array | null;
type F64 = Float64Array;
type Opt64 = Float64Array | null;
type Mask = Uint8Array | null;

/** The addon's exports; argument order mirrors native/src/binding.cpp (trailing synchronized-statistics and fused arguments may be left out). */
export interface NativeBinding {
  /** `streamingBytes`: 0 always streams, Infinity never, absent restores the default (per thread count; native/src/dispatch.h). */
  configure(isaCap: string, threads: number, streamingBytes?: number): NativeInfo;
  info(): NativeInfo;
  setNumThreads(n: number): void;
  /** STREAM-like probe: median GB/s of `kernel` over arrays of `floats` floats (benchmarks). */
  streamBandwidth(kernel: 'copy' | 'triad', floats: number, threads: number, reps: number): number;
  /** A new, uninitialised ArrayBuffer of `bytes` for a large output, from malloc's heap, huge pages advised (lib/outputs.ts). */
  allocateOutput(bytes: number): ArrayBuffer;
  /** malloc_trim: the heap's free memory back to the OS; whether any was released. */
  releaseFreedMemory(): boolean;
  /**
   * relu requires reluMask (ceil(n / 8) bytes); without relu it must be null. `freshOutputs`
   * (here and below): the outputs are new memory, in no cache (lib/outputs.ts).
   */
  forwardTrain(x: F32, outer: number, C: number, inner: number, y: F32, gamma: Opt, beta: Opt, eps: number, momentum: number, runningMean: Opt, runningVar: Opt, unbiased: boolean, saveMean: F32, saveInvStd: F32, momentsCount?: number, momentsMean?: Opt64, momentsM2?: Opt64, relu?: boolean, residual?: Opt, reluMask?: Mask, freshOutputs?: boolean, exchange?: ExchangeViews | null): void;
  forwardTrainAsync(...args: Parameters<NativeBinding['forwardTrain']>): Promise<void>;
  forwardInference(x: F32, outer: number, C: number, inner: number, y: F32, gamma: Opt, beta: Opt, eps: number, runningMean: F32, runningVar: F32, relu?: boolean, residual?: Opt, freshOutputs?: boolean): void;
  forwardInferenceAsync(...args: Parameters<NativeBinding['forwardInference']>): Promise<void>;
  /** A reluMask means relu: the gradient is masked first. */
  backward(dy: F32, x: F32, outer: number, C: number, inner: number, dx: F32, gamma: Opt, saveMean: F32, saveInvStd: F32, useGlobalStats: boolean, dgamma: F32, dbeta: F32, totalCount?: number, totalSumDy?: Opt64, totalSumDyXmu?: Opt64, ownSumDy?: Opt64, ownSumDyXmu?: Opt64, reluMask?: Mask, dresidual?: Opt, freshOutputs?: boolean, exchange?: ExchangeViews | null): void;
  backwardAsync(...args: Parameters<NativeBinding['backward']>): Promise<void>;
  batchMoments(x: F32, outer: number, C: number, inner: number, mean: F64, m2: F64): void;
  batchMomentsAsync(...args: Parameters<NativeBinding['batchMoments']>): Promise<void>;
  /** A reluMask means relu: the sums are of the masked gradient. */
  backwardSums(dy: F32, x: F32, outer: number, C: number, inner: number, saveMean: F32, sumDy: F64, sumDyXmu: F64, reluMask?: Mask): void;
  backwardSumsAsync(...args: Parameters<NativeBinding['backwardSums']>): Promise<void>;
}

/**
 * The (outer, C, inner) the addon takes: counts up to 2^53. Only an empty tensor's outer or
 * inner can pass that, even be Infinity (shape [2^30, 2^30, 0] with axis 2: no channels, 2^60
 * values per channel); 2^53 stands for them, as many values per channel as far as the addon's
 * "more than one" check goes, and no element is addressed either way.
 */
const MAX_COUNT = 2 ** 53;
const dims = (g: Geometry): [number, number, number] => [Math.min(g.outer, MAX_COUNT), g.channels, Math.min(g.inner, MAX_COUNT)];

const trainArgs = (p: TrainPlan) =>
  [p.x, ...dims(p.g), p.y, p.gamma, p.beta, p.eps, p.momentum, p.runningMean, p.runningVar, p.unbiased, p.saveMean, p.saveInvStd,
    p.moments?.count ?? 0, p.moments?.mean ?? null, p.moments?.m2 ?? null, p.relu, p.residual, p.reluMask, claimUnwritten(p.y), p.exchange ?? null] as const;
const inferenceArgs = (p: InferencePlan) =>
  [p.x, ...dims(p.g), p.y, p.gamma, p.beta, p.eps, p.runningMean, p.runningVar, p.relu, p.residual, claimUnwritten(p.y)] as const;
const backwardArgs = (p: BackwardPlan) =>
  [p.dy, p.x, ...dims(p.g), p.dx, p.gamma, p.saveMean, p.saveInvStd, p.useGlobalStats, p.dgamma, p.dbeta,
    p.sums?.count ?? p.exchange?.count ?? 0, p.sums?.sumDy ?? null, p.sums?.sumDyXmu ?? null, p.localSums?.sumDy ?? null, p.localSums?.sumDyXmu ?? null, p.reluMask, p.dresidual, bothUnwritten(p.dx, p.dresidual), p.exchange?.views ?? null] as const;
/** Whether both are new (claimUnwritten); claims both, whatever the first answers. */
const bothUnwritten = (a: F32, b: Opt) => {
  const first = claimUnwritten(a);
  return claimUnwritten(b) && first;
};
const momentsArgs = (p: MomentsPlan) => [p.x, ...dims(p.g), p.mean, p.m2] as const;
const sumsArgs = (p: SumsPlan) => [p.dy, p.x, ...dims(p.g), p.saveMean, p.sumDy, p.sumDyXmu, p.reluMask] as const;

export function nativeBackend(b: NativeBinding): Backend {
  return {
    forwardTrain: (p) => b.forwardTrain(...trainArgs(p)),
    forwardInference: (p) => b.forwardInference(...inferenceArgs(p)),
    backward: (p) => b.backward(...backwardArgs(p)),
    batchMoments: (p) => b.batchMoments(...momentsArgs(p)),
    backwardSums: (p) => b.backwardSums(...sumsArgs(p)),
    forwardTrainAsync: (p) => b.forwardTrainAsync(...trainArgs(p)),
    forwardInferenceAsync: (p) => b.forwardInferenceAsync(...inferenceArgs(p)),
    backwardAsync: (p) => b.backwardAsync(...backwardArgs(p)),
    batchMomentsAsync: (p) => b.batchMomentsAsync(...momentsArgs(p)),
    backwardSumsAsync: (p) => b.backwardSumsAsync(...sumsArgs(p)),
  };
}
