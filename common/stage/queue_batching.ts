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
  completionBatch: Required<CompletionBatchOptions>;
}

/**
 * The default batching for `concurrency` slots (see the module docs).
 *
 * @example
 * ```ts
 * const { prefetch, completionBatch } = queueBatching(config.worker.concurrency);
 * ```
 */
export function queueBatching(concurrency: number): QueueBatching {
  const slots = Math.max(1, Math.floor(concurrency));
  return {
    prefetch: slots,
    completionBatch: {
      maxItems: Math.min(MAX_COMPLETION_GROUP, slots),
      maxDelayMs: COMPLETION_DELAY_MS,
    },
  };
}
