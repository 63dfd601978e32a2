/**
 * The queue batching every stage uses unless it passes its own: a prefetch buffer of
 * `concurrency` claims (a free slot never waits for a claim round trip) and completions
 * recorded in groups of at most `min(64, concurrency)` items or 10 ms, whichever comes first
 * (one `completeMany` transaction per group instead of one per item). A slot stays busy until
 * its item's group is recorded, so at most `concurrency` completions wait and a full group
 * flushes as soon as every slot waits. Shutdown semantics are the worker loop's: prefetched
 * claims that never started are released, waiting completions are flushed before it returns.
 *
 * @example
 * ```ts
 * queueBatching(8); // { prefetch: 8, completionBatch: { maxItems: 8, maxDelayMs: 10 } }
 * ```
 *
 * Operators override each part with `worker.prefetch`, `worker.completionGroup` (1 = one
 * transaction per item) and `worker.completionDelayMs`.
 * @module
 */
import type { RunWorkerOptions } from "../worker/mod.ts";

type CompletionBatchOptions = NonNullable<RunWorkerOptions["completionBatch"]>;

/** The largest completion group (items), whatever the concurrency. */
export const MAX_COMPLETION_GROUP = 64;
/** The longest a finished item waits for its group to be recorded (ms). */
export const COMPLETION_DELAY_MS = 10;

/** Prefetch and completion-group settings for a worker of `concurrency` slots. */
export interface QueueBatching {
  prefetch: number;
  /** Absent when completions are recorded one transaction per item (a group of 1). */
  completionBatch?: Required<CompletionBatchOptions>;
}

/** The `worker` settings that override the defaults (see `worker.*` in the config reference). */
export interface QueueBatchingOverrides {
  prefetch?: number;
  completionGroup?: number;
  completionDelayMs?: number;
}

/**
 * The default batching for `concurrency` slots (see the module docs), with the operator's
 * `worker.prefetch`, `worker.completionGroup` and `worker.completionDelayMs` taking precedence.
 * A completion group of 1 turns grouping off: each item is recorded by its own `complete`.
 *
 * @example
 * ```ts
 * const { prefetch, completionBatch } = queueBatching(config.worker.concurrency, config.worker);
 * queueBatching(8, { prefetch: 0, completionGroup: 1 }); // { prefetch: 0 }: today's 1-per-item path
 * ```
 */
export function queueBatching(
  concurrency: number,
  overrides: QueueBatchingOverrides = {},
): QueueBatching {
  const slots = Math.max(1, Math.floor(concurrency));
  const prefetch = overrides.prefetch ?? slots;
  const maxItems = overrides.completionGroup ?? Math.min(MAX_COMPLETION_GROUP, slots);
  if (maxItems <= 1) return { prefetch };
  return {
    prefetch,
    completionBatch: {
      maxItems,
      maxDelayMs: overrides.completionDelayMs ?? COMPLETION_DELAY_MS,
    },
  };
}
