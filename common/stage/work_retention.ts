/**
 * Work retention: while a queue runs, its `done` work rows older than `worker.doneRetentionMs`
 * are deleted in bounded batches (`pruneDoneWork`), at start and then every `everyMs`. A done
 * row is history, not state: discovery, normalize's backfill and infer decide what to do from
 * images, variants and predictions, so at 10^8 images the `work` table stays the size of what is
 * in flight rather than of everything ever done (README, "Scale model"). Several workers pruning
 * the same queue only share the deletes. Off when `doneRetentionMs` is unset.
 *
 * @example
 * ```ts
 * const retention = startWorkRetention({ manifest, log, queue: "normalize", retentionMs: 7 * 86_400_000 });
 * // ... run the queue ...
 * await retention.stop();
 * ```
 * @module
 */
import { messageOf } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { ManifestStore, QueueName } from "../manifest/mod.ts";

/** Rows per `pruneDoneWork` call: one short statement each. */
export const PRUNE_BATCH = 10_000;

export interface WorkRetentionOptions {
  manifest: Pick<ManifestStore, "pruneDoneWork">;
  log: Logger;
  queue: QueueName;
  /** Done rows last updated longer ago than this are deleted. */
  retentionMs: number;
  /** How often to prune (default: a tenth of the retention, between 1 minute and 1 hour). */
  everyMs?: number;
  now?: () => number;
}

/** A running retention: `stop` clears its timer and waits for a pass in progress. */
export interface WorkRetention {
  /** Resolves with the rows deleted by the first pass (the one at start). */
  readonly first: Promise<number>;
  stop(): Promise<void>;
}

/**
 * Deletes the queue's expired done rows now and then every `everyMs` (see the module docs).
 * Errors are logged, never thrown: retention must not stop the work.
 *
 * @example
 * ```ts
 * const r = startWorkRetention({ manifest, log, queue: "ingest", retentionMs: 86_400_000 });
 * console.log(await r.first, "rows pruned");
 * await r.stop();
 * ```
 */
export function startWorkRetention(o: WorkRetentionOptions): WorkRetention {
  const now = o.now ?? Date.now;
  const everyMs = o.everyMs ??
    Math.min(3_600_000, Math.max(60_000, Math.floor(o.retentionMs / 10)));
  let stopped = false;
  let running: Promise<number> = Promise.resolve(0);
  const pass = async (): Promise<number> => {
    const doneBefore = Math.max(0, now() - o.retentionMs);
    let total = 0;
    try {
      for (;;) {
        const n = await o.manifest.pruneDoneWork(o.queue, { doneBefore, limit: PRUNE_BATCH });
        total += n;
        if (n < PRUNE_BATCH || stopped) break;
      }
    } catch (err) {
      o.log.warn("work retention: pruning done rows failed", {
        queue: o.queue,
        error: messageOf(err),
      });
    }
    if (total > 0) {
      o.log.info("work retention: pruned done rows", {
        queue: o.queue,
        rows: total,
        olderThan: new Date(doneBefore).toISOString(),
      });
    }
    return total;
  };
  const first = running = pass();
  const timer = setInterval(() => {
    running = running.then(pass);
  }, everyMs);
  return {
    first,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
