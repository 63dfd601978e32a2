/**
 * In-process locks by content hash, held from the dedupe lookup until the worker has recorded
 * the item's outcome. Two items with the same bytes processed at once by one worker would
 * otherwise both find no ingested copy and both be published as `ingested`; with the lock the
 * second waits, then finds the first (or, if the first failed, becomes the copy itself).
 *
 * Workers in other processes are not covered: that needs the check inside the manifest's
 * completing transaction.
 *
 * @example
 * ```ts
 * const locks = new ContentLocks();
 * await locks.acquire(sha256, claim.itemId); // in process()
 * locks.release(claim.itemId); // in onResult, whatever the outcome
 * ```
 * @module
 */

export class ContentLocks {
  /** sha256 → the tail of its wait queue. */
  readonly #tails = new Map<string, Promise<void>>();
  /** item id → how to let the next waiter in. */
  readonly #held = new Map<string, () => void>();

  /** Waits until no other item holds `sha256`, then holds it for `itemId`. */
  async acquire(sha256: string, itemId: string): Promise<void> {
    this.release(itemId);
    const before = this.#tails.get(sha256) ?? Promise.resolve();
    let open!: () => void;
    const mine = new Promise<void>((resolve) => open = resolve);
    const tail = before.then(() => mine);
    this.#tails.set(sha256, tail);
    await before;
    this.#held.set(itemId, () => {
      open();
      if (this.#tails.get(sha256) === tail) this.#tails.delete(sha256);
    });
  }

  /** Lets the next item with the same content in; a no-op when `itemId` holds nothing. */
  release(itemId: string): void {
    const release = this.#held.get(itemId);
    if (!release) return;
    this.#held.delete(itemId);
    release();
  }

  /** Hashes currently held or waited for (tests). */
  get size(): number {
    return this.#tails.size;
  }
}
