/**
 * The one backoff: exponential with full jitter. Retry `n` (1 for the first retry) waits a
 * uniform delay in `[0, min(maxDelayMs, baseDelayMs * 2^(n-1)))`; without jitter, the cap
 * itself.
 *
 * @example
 * ```ts
 * backoffDelayMs(3, { baseDelayMs: 100, maxDelayMs: 5000 }); // in [0, 400)
 * exponentialDelayMs(3, { baseDelayMs: 100, maxDelayMs: 5000 }); // 400
 * ```
 * @module
 */

/** The growth of the delays. */
export interface BackoffPolicy {
  /** The first retry's cap. */
  baseDelayMs: number;
  /** No delay exceeds this. */
  maxDelayMs: number;
}

/**
 * The delay cap of retry `retry`: `min(maxDelayMs, baseDelayMs * 2^(retry-1))`.
 *
 * @example
 * ```ts
 * exponentialDelayMs(1, { baseDelayMs: 500, maxDelayMs: 60_000 }); // 500
 * ```
 */
export function exponentialDelayMs(retry: number, policy: BackoffPolicy): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
}

/**
 * A full-jitter delay for retry `retry`: uniform in `[0, exponentialDelayMs(retry))`, floored.
 *
 * @example
 * ```ts
 * backoffDelayMs(2, { baseDelayMs: 100, maxDelayMs: 5000 }, () => 0.5); // 100
 * ```
 */
export function backoffDelayMs(
  retry: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * exponentialDelayMs(retry, policy));
}
