/**
 * The arrays the package allocates for outputs the caller did not give. Each is a new
 * Float32Array on its own ArrayBuffer, owned by the caller (SPEC section 3): never shared with
 * another array, transferable to a worker, freed by the garbage collector like any other.
 *
 * Why not `new Float32Array(n)` (measured; the README's performance section has the figures):
 * - Zeroing is wasted work: every kernel writes every element of y and dx. `new Float32Array`
 *   zero-fills memory that malloc reuses; `Buffer.allocUnsafeSlow` takes it as it is.
 * - Fresh pages are the big cost: a block that malloc maps anew faults on every 4 KiB page of
 *   its first write, which cost more than the kernel. The addon tunes glibc's malloc at load
 *   (native/src/malloc_tuning.h) so that blocks up to 32 MiB come from its heap and freed ones
 *   stay mapped for the next output; that took calls without destinations from 1.7-4.8x the time
 *   of the same call with destinations to 1.2-1.3x on 25 MB tensors.
 * - Past 32 MiB glibc maps every block afresh, whatever the tuning, and unmaps it when freed:
 *   the OS then faults in and zeroes every page of every output (103 MB: 40-50 ms, against a
 *   25 ms kernel). On the native backend such blocks come from the addon instead
 *   (`allocateOutput`): from malloc's heap, with mmap off for that one allocation, so an output
 *   reuses the memory of one the garbage collector freed, and with 2 MiB huge pages advised for
 *   the memory the heap must still map. A training loop without destinations on [8, 64, 224,
 *   224] went from 70 to 45 ms per layer step (`npm run bench:rss`), for a peak resident set two
 *   blocks higher (833 MB against 637), flat over 1,000 steps. The heap hands that memory back
 *   to the OS once large outputs stop coming (lib/memory-release.ts). A pool of our own would
 *   need external ArrayBuffers fed by finalizers, which Node.js refuses to transfer to workers.
 * - A new block is in no cache, and an ordinary store would first read each of its lines from
 *   memory: the native backend writes new outputs of 128 KiB or more with streaming stores
 *   (native/src/binding.cpp, exec_for), which took 1 MB calls without destinations from 0.22-0.36
 *   to 0.13-0.26 ms. It learns which arrays are new from {@link claimUnwritten}.
 * - What stays: a reused destination is often still in cache, where a new block cannot be (1 MB
 *   calls: 1.1-1.9x the time of the same call with a destination).
 * Pass destinations, or use the layer's `reuseOutputs`, where that matters.
 * Per-channel outputs (C floats) stay zero-filled `new Float32Array`s: they are small, and the
 * kernels leave none of their elements unwritten either.
 */
import { constants } from 'buffer';

import { rangeError } from './errors';
import { IdleRelease } from './memory-release';
import type { NativeBinding } from './native-backend';

/** Blocks at least this large come from a fresh mmap (glibc's largest mmap threshold). */
export const FRESH_MAPPING_BYTES = 32 * 2 ** 20;

let allocateLarge: ((bytes: number) => ArrayBuffer) | null = null;

/** Lets outputs past FRESH_MAPPING_BYTES come from the native addon (none on the JavaScript backend). */
export function allocateLargeOutputsWith(native: NativeBinding | null): void {
  if (!native) {
    allocateLarge = null;
    return;
  }
  const release = new IdleRelease(() => native.releaseFreedMemory());
  allocateLarge = (bytes) => {
    const buffer = native.allocateOutput(bytes);
    release.made(buffer);
    return buffer;
  };
}

function outOfMemory(length: number, name: string) {
  return rangeError('ERR_BATCHNORM_OUT_OF_MEMORY', `memory for ${length} floats`, name, 'an allocation failure');
}

/** Arrays from overwrittenOutput that no kernel has written yet. */
const unwritten = new WeakSet<Float32Array>();

/**
 * Whether `array` came from {@link overwrittenOutput} and is about to be written for the first
 * time (then it is in no cache); true once per array. Null (no such output) counts as new.
 */
export function claimUnwritten(array: Float32Array | null): boolean {
  return array === null || unwritten.delete(array);
}

/**
 * A new array for an output that the kernel overwrites entirely (y, dx): its initial contents
 * are never seen. Above Buffer's size limit it falls back to a zero-filled Float32Array.
 */
export function overwrittenOutput(length: number, name: string): Float32Array {
  const bytes = length * Float32Array.BYTES_PER_ELEMENT;
  if (bytes > constants.MAX_LENGTH) return zeroedOutput(length, name);
  let output: Float32Array;
  try {
    if (allocateLarge && bytes >= FRESH_MAPPING_BYTES) {
      output = new Float32Array(allocateLarge(bytes));
    } else {
      const block = Buffer.allocUnsafeSlow(bytes);
      output = new Float32Array(block.buffer, block.byteOffset, length);
    }
  } catch {
    throw outOfMemory(length, name);
  }
  unwritten.add(output);
  return output;
}

/** A new zero-filled Float64Array for per-channel statistics (SPEC section 8: moments, gradient sums). */
export function zeroedStatistics(length: number, name: string): Float64Array {
  try {
    return new Float64Array(length);
  } catch {
    throw rangeError('ERR_BATCHNORM_OUT_OF_MEMORY', `memory for ${length} doubles`, name, 'an allocation failure');
  }
}

/** A new zero-filled bit-packed ReLU mask (SPEC section 7): 1/32 of the data, like the small outputs. */
export function maskOutput(bytes: number, name: string): Uint8Array {
  try {
    return new Uint8Array(bytes);
  } catch {
    throw rangeError('ERR_BATCHNORM_OUT_OF_MEMORY', `memory for ${bytes} bytes`, name, 'an allocation failure');
  }
}

/** A new zero-filled array for an output (the small per-channel ones). */
export function zeroedOutput(length: number, name: string): Float32Array {
  try {
    return new Float32Array(length);
  } catch {
    throw outOfMemory(length, name);
  }
}
