/**
 * The one `sleep`: waits `ms`, and returns early (without throwing) when `signal` aborts; its
 * timer and listener are cleared either way.
 *
 * @example
 * ```ts
 * await sleep(250);
 * await sleep(60_000, shutdown.signal); // returns at once on SIGTERM
 * ```
 * @module
 */

/**
 * Resolves after `ms` milliseconds, or as soon as `signal` aborts.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * setTimeout(() => ac.abort(), 10);
 * await sleep(10_000, ac.signal); // ~10 ms
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
