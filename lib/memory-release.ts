/**
 * When the memory of freed large outputs goes back to the OS. The native backend takes outputs
 * past 32 MiB from malloc's heap (lib/outputs.ts), which keeps the memory of the ones the
 * garbage collector frees for the next ones: a training loop then writes into memory already
 * mapped instead of fresh pages. Once outputs stop coming, that memory would stay with the
 * process; so, as jemalloc's decay does, it is handed back (malloc_trim) when RELEASE_AFTER_MS
 * have passed without a large output being made or collected. The timer never keeps the
 * process alive.
 */

/** How long the heap keeps freed large outputs' memory after the last one was made or collected. */
export const RELEASE_AFTER_MS = 5000;

export class IdleRelease {
  #last = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  // A large output's buffer, once collected, restarts the wait: its memory is free from then on.
  readonly #collected = new FinalizationRegistry<null>(() => this.touch());

  constructor(private readonly release: () => void) {}

  /** A large output was made: `buffer` is its memory. */
  made(buffer: ArrayBuffer): void {
    this.#collected.register(buffer, null);
    this.touch();
  }

  /** Restarts the wait before the release. */
  touch(): void {
    this.#last = performance.now();
    if (this.#timer === null) this.#arm(RELEASE_AFTER_MS);
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      const idle = performance.now() - this.#last;
      if (idle < RELEASE_AFTER_MS) return this.#arm(RELEASE_AFTER_MS - idle);
      this.#timer = null;
      this.release();
    }, ms);
    this.#timer.unref();
  }
}
