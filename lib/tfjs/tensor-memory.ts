/**
 * Where the `cpu` and `wasm` backends of TensorFlow.js keep a float32 tensor's values, so our
 * kernels read and write them in place: no copy in, no copy out.
 *
 * - `cpu` keeps a `Float32Array` per tensor (`backend.data`); an output is a new array handed
 *   over to the backend (`makeTensorInfo`), as its own kernels do; not zero-filled, since our
 *   kernels write every element (lib/outputs.ts says what that saves).
 * - `wasm` keeps every tensor in the WebAssembly heap; an output is allocated there
 *   (`makeOutput`), and `typedArrayFromHeap` views a tensor's bytes. Allocating may grow the
 *   heap, which detaches every view taken before, so views are taken after all outputs exist.
 *
 * These are the same backend members tfjs-backend-cpu's and tfjs-backend-wasm's own kernels use
 * (stable through tfjs 4.x); they are not part of tfjs's public API, hence the narrow interfaces.
 */
import type { DataId, TensorInfo } from '@tensorflow/tfjs';

import { overwrittenOutput } from '../outputs';

/** The backends whose memory we know. */
export const SUPPORTED_BACKENDS = ['cpu', 'wasm'] as const;
export type SupportedBackend = (typeof SUPPORTED_BACKENDS)[number];

interface CpuBackend {
  data: { get(dataId: DataId): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

interface WasmBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

/** Values of a float32 tensor of the backend, without a copy. */
export type View = (t: TensorInfo) => Float32Array;

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

interface Memory {
  allocate(shape: number[]): TensorInfo;
  view: View;
  free(t: TensorInfo): void;
}

function cpuMemory(backend: CpuBackend): Memory {
  return {
    allocate: (shape) => backend.makeTensorInfo(shape, 'float32', overwrittenOutput(size(shape), 'a tfjs output')),
    view: (t) => {
      const values = backend.data.get(t.dataId).values;
      // Every float32 tensor of tfjs-backend-cpu holds a Float32Array; convert anything else
      // rather than hand the kernels an array they would reject.
      return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
    },
    free: (t) => backend.disposeData(t.dataId, true),
  };
}

function wasmMemory(backend: WasmBackend): Memory {
  return {
    allocate: (shape) => backend.makeOutput(shape, 'float32'),
    view: (t) => backend.typedArrayFromHeap(t),
    free: (t) => backend.disposeData(t.dataId, true),
  };
}

/**
 * Runs a kernel body on new float32 outputs of `shapes`: `body` gets a view function for the
 * inputs and the outputs' values, all taken after allocation, and must write every element of
 * every output (they start with whatever the memory held). When `body` throws, the outputs are
 * freed, so a failed kernel leaks nothing.
 */
export function computeInto(backendName: SupportedBackend, backend: unknown, shapes: number[][], body: (view: View, outputs: Float32Array[]) => void): TensorInfo[] {
  const memory = backendName === 'cpu' ? cpuMemory(backend as CpuBackend) : wasmMemory(backend as WasmBackend);
  const outputs = shapes.map((shape) => memory.allocate(shape));
  try {
    body(memory.view, outputs.map(memory.view));
  } catch (error) {
    for (const t of outputs) memory.free(t);
    throw error;
  }
  return outputs;
}
