/**
 * A FIFO async mutex. node:sqlite runs every statement synchronously on one connection, so
 * concurrent async callers would otherwise interleave statements inside each other's
 * transactions.
 *
 * @module
 */

export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  /** Runs `fn` once every earlier caller has finished. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    // The next caller waits for this one to settle, whatever the outcome.
    this.#tail = result.then(() => {}, () => {});
    return result;
  }
}
