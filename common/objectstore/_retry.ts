/**
 * Retry policy for object-store calls: exponential backoff with full jitter
 * (delay = random(0, min(maxDelay, base * 2^(retry-1)))), for transient failures only:
 * 5xx, 429, SlowDown and other throttling codes, connection resets, refusals and timeouts.
 *
 * One policy drives both the AWS SDK (as its retry strategy, so multipart parts retry too)
 * and `withRetry` for work the SDK cannot replay, such as re-reading a response body.
 * @module
 */
import { backoffDelayMs } from "../timing/backoff.ts";
import { sleep as sleepFor } from "../timing/sleep.ts";

/** How many times to try and how long to wait between tries. */
export interface RetryPolicy {
  /** Total tries including the first; 1 disables retries. */
  maxAttempts: number;
  /** The cap of the first retry's delay; doubles on each retry. */
  baseDelayMs: number;
  /** Upper bound of any single delay. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 100,
  maxDelayMs: 5_000,
};

/** The delay before retry number `retry` (1 for the first retry), full jitter. */
export { backoffDelayMs };

const RETRYABLE_NAMES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "BandwidthLimitExceeded",
  "ProvisionedThroughputExceededException",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalError",
  "ServiceUnavailable",
  "TimeoutError",
  "PriorRequestNotComplete",
  // Deno's own network errors.
  "ConnectionReset",
  "ConnectionAborted",
  "ConnectionRefused",
  "TimedOut",
  "BrokenPipe",
  "UnexpectedEof",
]);

const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/**
 * Whether an error is transient: worth retrying the same request unchanged.
 *
 * @example
 * ```ts
 * isRetryableError(Object.assign(new Error("x"), { code: "ECONNRESET" })); // true
 * isRetryableError(Object.assign(new Error("x"), { name: "NoSuchKey" }));   // false
 * ```
 */
export function isRetryableError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    const s = e as ErrorShape;
    if (s.name === "AbortError") return false;
    const status = s.$metadata?.httpStatusCode;
    if (typeof status === "number" && status >= 400) {
      // An error status decides: 4xx other than 408/429 is the caller's fault and won't improve.
      return status === 408 || status === 429 || (status >= 500 && status !== 501);
    }
    if (s.$retryable) return true;
    if (typeof s.name === "string" && RETRYABLE_NAMES.has(s.name)) return true;
    if (
      typeof s.code === "string" && (RETRYABLE_CODES.has(s.code) || RETRYABLE_NAMES.has(s.code))
    ) {
      return true;
    }
    if (typeof s.message === "string" && /socket hang up|connection reset/i.test(s.message)) {
      return true;
    }
    e = s.cause;
  }
  return false;
}

/** Hooks for tests and logging; defaults are real timers and `Math.random`. */
export interface RetryOptions {
  policy?: RetryPolicy;
  isRetryable?: (err: unknown) => boolean;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Called before each wait; `attempt` is the try that just failed (1-based). */
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
}

/**
 * Calls `fn` until it succeeds, a non-retryable error occurs, or attempts run out; then
 * rethrows the last error.
 *
 * @example
 * ```ts
 * const bytes = await withRetry(() => fetchSomething(), { policy: { ...DEFAULT_RETRY_POLICY, maxAttempts: 3 } });
 * ```
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  opts: RetryOptions = {},
): Promise<T> {
  const policy = opts.policy ?? DEFAULT_RETRY_POLICY;
  const isRetryable = opts.isRetryable ?? isRetryableError;
  const sleep = opts.sleep ?? ((ms: number) => sleepFor(ms));
  for (let attempt = 1;; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.maxAttempts || !isRetryable(err)) throw err;
      const delayMs = backoffDelayMs(attempt, policy, opts.random);
      opts.onRetry?.({ attempt, delayMs, error: err });
      await sleep(delayMs);
    }
  }
}

/** The parts of Smithy's `RetryStrategyV2` the SDK's retry middleware calls. */
export interface SdkRetryToken {
  getRetryCount(): number;
  getRetryDelay(): number;
}

/** Structurally Smithy's `RetryErrorInfo`. */
export interface SdkRetryErrorInfo {
  error?: unknown;
  errorType: string;
  retryAfterHint?: Date;
}

/** Structurally Smithy's `RetryStrategyV2`, accepted as `retryStrategy` by AWS SDK v3 clients. */
export interface SdkRetryStrategy {
  acquireInitialRetryToken(scope: string): Promise<SdkRetryToken>;
  refreshRetryTokenForRetry(token: SdkRetryToken, info: SdkRetryErrorInfo): Promise<SdkRetryToken>;
  recordSuccess(token: SdkRetryToken): void;
}

function token(count: number, delay: number): SdkRetryToken {
  return { getRetryCount: () => count, getRetryDelay: () => delay };
}

/**
 * This policy as an AWS SDK v3 retry strategy (no retry quota: every transient error of a
 * request is retried until `maxAttempts`). A `Retry-After` hint raises the delay, up to
 * `maxDelayMs`.
 *
 * @example
 * ```ts
 * const client = new S3Client({ retryStrategy: sdkRetryStrategy(DEFAULT_RETRY_POLICY) });
 * ```
 */
export function sdkRetryStrategy(
  policy: RetryPolicy,
  opts: Pick<RetryOptions, "isRetryable" | "random" | "onRetry"> = {},
): SdkRetryStrategy {
  const isRetryable = opts.isRetryable ?? isRetryableError;
  return {
    acquireInitialRetryToken: () => Promise.resolve(token(0, 0)),
    refreshRetryTokenForRetry(prev, info) {
      const attempt = prev.getRetryCount() + 1;
      const transient = isRetryable(info.error) ||
        (info.errorType !== "CLIENT_ERROR" && info.error !== undefined &&
          !(info.error instanceof Error && info.error.name === "AbortError"));
      if (attempt >= policy.maxAttempts || !transient) {
        return Promise.reject(info.error ?? new Error("not retryable"));
      }
      let delayMs = backoffDelayMs(attempt, policy, opts.random);
      if (info.retryAfterHint) {
        const hinted = info.retryAfterHint.getTime() - Date.now();
        delayMs = Math.min(policy.maxDelayMs, Math.max(delayMs, hinted));
      }
      opts.onRetry?.({ attempt, delayMs, error: info.error });
      return Promise.resolve(token(attempt, delayMs));
    },
    recordSuccess() {},
  };
}
