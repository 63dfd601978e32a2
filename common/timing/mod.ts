/**
 * Waiting: {@link sleep} (abortable, never throws) and {@link backoffDelayMs} (exponential
 * backoff with full jitter), shared by every retry loop.
 *
 * @example
 * ```ts
 * for (let retry = 1; retry <= 3; retry++) {
 *   await sleep(backoffDelayMs(retry, { baseDelayMs: 100, maxDelayMs: 2000 }), signal);
 * }
 * ```
 * @module
 */
export * from "./backoff.ts";
export * from "./sleep.ts";
