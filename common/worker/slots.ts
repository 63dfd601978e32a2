/**
 * A counting semaphore for a CPU-heavy step (decode, resize, encode), so that more items can
 * be in flight than there are cores: the extra ones download and upload while the slots compute.
 *
 * @example
 * ```ts
 * const cpu = new Slots(navigator.hardwareConcurrency);
 * const out = await cpu.run(() => decode(bytes), signal);
 * ```
 * @module
 */

/** At most `size` callers of {@link Slots.run} run at once; the rest wait in order. */
export class Slots {
  readonly size: number;
  #busy = 0;
  readonly #waiting: (() => void)[] = [];
  readonly #onChange?: (busy: number) => void;

  /** `onChange` hears the number of busy slots after every change (e.g. to set a gauge). */
  constructor(size: number, onChange?: (busy: number) => void) {
    if (!(Number.isInteger(size) && size >= 1)) {
      throw new RangeError(`slots: expected an integer >= 1, found ${size}`);
    }
    this.size = size;
    this.#onChange = onChange;
  }

  /** Slots in use now. */
  get busy(): number {
    return this.#busy;
  }

  /** Runs `fn` in a free slot; an abort while waiting rejects without running it. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#acquire(signal);
    try {
      return await fn();
    } finally {
      this.#release();
    }
  }

  #acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.#busy < this.size) {
      this.#busy++;
      this.#onChange?.(this.#busy);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        this.#busy++;
        this.#onChange?.(this.#busy);
        resolve();
      };
      const onAbort = () => {
        const i = this.#waiting.indexOf(grant);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(grant);
    });
  }

  #release(): void {
    this.#busy--;
    this.#onChange?.(this.#busy);
    this.#waiting.shift()?.();
  }
}
