/**
 * The arrays a layer built with `reuseOutputs: true` returns: its own, written again by later
 * calls, so that a training loop allocates no tensor-sized array per step (SPEC section 9 leaves the layer's
 * speed without destinations to the implementation).
 *
 * Lifetime, as the README documents it: `forward`'s array stays valid until the layer's next
 * forward, and a forward that comes before the previous forward's backward writes to another
 * array, so two forwards before one backward never corrupt the first one's output (another
 * layer's backward may still need it as its input). `backward`'s array stays valid until the
 * layer's next backward. An array is never one the call reads (its x or dy).
 */
import { overwrittenOutput } from '../outputs';
import { sameMemory } from '../validate';

/** The most arrays of one kind a layer keeps: the one in use by a pending backward, and one more. */
const KEPT = 2;

export class ReusedOutputs {
  readonly #arrays: Float32Array[] = [];

  /** An array of `length` floats that is none of `inUse`; kept for later calls when it can be. */
  take(length: number, inUse: readonly (Float32Array | null)[], name: string): Float32Array {
    // By memory, not identity: a view of one of our arrays (`new Float32Array(y.buffer)`) passed
    // back as x is that array. Each kept array has a buffer of its own (overwrittenOutput), so
    // an in-use array of its length that shares its memory is exactly it.
    const busy = (a: Float32Array) => inUse.some((b) => b !== null && sameMemory(a, b));
    const kept = this.#arrays.find((a) => a.length === length && !busy(a));
    if (kept) return kept;
    const fresh = overwrittenOutput(length, name);
    if (this.#arrays.length < KEPT) {
      this.#arrays.push(fresh);
    } else {
      const replaced = this.#arrays.findIndex((a) => !busy(a));
      if (replaced >= 0) this.#arrays[replaced] = fresh;
    }
    return fresh;
  }
}
