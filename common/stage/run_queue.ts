/**
 * The queue part every stage shares, built on `runWorker`: the worker loop over one queue, the
 * `queue_depth` gauge refreshed before, during and after, per-item result metrics
 * (`items_total`, `item_duration_seconds`, `errors_total`), the failures of the run, and
 * optionally the stage's one-run-at-a-time guard.
 *
 * @example
 * ```ts
 * const summary = await runQueue(
 *   { name: "normalize", manifest, log, metrics, worker: config.worker },
 *   { queue: "normalize", once: true, process: async (claim) => ({}) },
 * );
 * summary.failures; // [{ itemId, outcome: "failed", reason: "decode_failed", message }]
 * ```
 * @module
 */
import type { Counter, Gauge, Histogram } from "prom-client";
import type { SharedConfig } from "../config/schema.ts";
import { messageOf } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Claim, QueueName, WorkState } from "../manifest/mod.ts";
import {
  type ItemResult,
  runWorker,
  type RunWorkerOptions,
  type WorkerSummary,
  type WorkQueue,
} from "../worker/mod.ts";
import { queueBatching } from "./queue_batching.ts";
import type { RunGuard } from "./run_guard.ts";
import { startWorkRetention } from "./work_retention.ts";

/** The queue metrics of a stage (any `StageMetrics` has them). */
export interface QueueMetrics {
  itemsTotal: Pick<Counter<"result">, "inc">;
  itemDurationSeconds: Pick<Histogram<never>, "observe">;
  errorsTotal: Pick<Counter<"reason">, "inc">;
  queueDepth: Pick<Gauge<"state">, "set">;
}

/** What a queue run needs of its stage. */
export interface QueueStage {
  /** The stage name, for errors. */
  name: string;
  manifest: WorkQueue;
  log: Logger;
  metrics: QueueMetrics;
  /** The `worker` section: owner, lease, attempts, poll interval, batch size, concurrency. */
  worker: SharedConfig["worker"];
  /** When given, the run goes through it (one run at a time, none after close). */
  guard?: RunGuard;
}

/** One item that failed, for good (`failed`) or to be retried (`retried`). */
export interface QueueFailure {
  itemId: string;
  outcome: "failed" | "retried";
  reason: string;
  message: string;
}

/** {@link WorkerSummary} plus the failures of the run. */
export interface QueueSummary extends WorkerSummary {
  failures: QueueFailure[];
}

/** Options of one queue run; `runWorker`'s own options pass through. */
export interface RunQueueOptions extends
  Partial<
    Omit<RunWorkerOptions, "manifest" | "stage" | "owner" | "log" | "process" | "onResult">
  > {
  queue: QueueName;
  process: RunWorkerOptions["process"];
  /** Called after the metrics with each finished item. */
  onResult?: (claim: Claim, result: ItemResult, ms: number) => void;
  /** Count results in `items_total` / `item_duration_seconds` / `errors_total` (default true). */
  resultMetrics?: boolean;
  /** How often to refresh the queue-depth gauge while running, ms (default 5000). */
  depthEveryMs?: number;
}

const STATES: readonly WorkState[] = ["pending", "leased", "done", "failed"];

/**
 * Sets `metrics.queueDepth` from the manifest's counts for `queue` and returns the counts
 * (null when they could not be read; that is logged at debug level).
 *
 * @example
 * ```ts
 * const counts = await refreshQueueDepth(stage, "ingest");
 * counts?.pending; // 12
 * ```
 */
export async function refreshQueueDepth(
  stage: Pick<QueueStage, "manifest" | "log" | "metrics">,
  queue: QueueName,
): Promise<Partial<Record<WorkState, number>> | null> {
  try {
    const counts = (await stage.manifest.workCounts(queue))[queue] ?? {};
    for (const state of STATES) stage.metrics.queueDepth.set({ state }, counts[state] ?? 0);
    return counts;
  } catch (err) {
    stage.log.debug("could not refresh queue depth", { queue, error: messageOf(err) });
    return null;
  }
}

/**
 * Runs the worker loop on `opts.queue` with the stage's worker settings and returns its totals
 * and failures. Concurrency and batch size default to `worker.concurrency` and
 * `min(worker.batchSize, concurrency)`; prefetch and grouped completions to `queueBatching`.
 *
 * @example
 * ```ts
 * const s = await runQueue(stage, { queue: "ingest", signal, process: processItem });
 * console.log(s.done, s.failures.length);
 * ```
 */
export function runQueue(stage: QueueStage, opts: RunQueueOptions): Promise<QueueSummary> {
  const go = () => runQueueUnguarded(stage, opts);
  return stage.guard ? stage.guard.run(go) : go();
}

async function runQueueUnguarded(stage: QueueStage, opts: RunQueueOptions): Promise<QueueSummary> {
  const { queue, resultMetrics = true, depthEveryMs = 5000, ...rest } = opts;
  const { metrics, worker } = stage;
  const failures: QueueFailure[] = [];
  const concurrency = opts.concurrency ?? worker.concurrency;
  await refreshQueueDepth(stage, queue);
  const timer = setInterval(() => void refreshQueueDepth(stage, queue), depthEveryMs);
  const prune = stage.manifest.pruneDoneWork?.bind(stage.manifest);
  const retention = worker.doneRetentionMs !== undefined && prune
    ? startWorkRetention({
      manifest: { pruneDoneWork: prune },
      log: stage.log,
      queue,
      retentionMs: worker.doneRetentionMs,
    })
    : null;
  try {
    const summary = await runWorker({
      leaseMs: worker.leaseMs,
      maxAttempts: worker.maxAttempts,
      idlePollMs: worker.idlePollMs,
      ...queueBatching(concurrency, worker),
      shutdownCallMs: worker.shutdownCallMs,
      ...withoutUndefined(rest),
      // The operator's worker.graceMs wins over a stage's own default (train's 30 s).
      ...(worker.graceMs === undefined ? {} : { graceMs: worker.graceMs }),
      concurrency,
      batchSize: opts.batchSize ?? Math.min(worker.batchSize, concurrency),
      manifest: stage.manifest,
      stage: queue,
      owner: worker.id,
      log: stage.log,
      process: opts.process,
      onResult: (claim, result, ms) => {
        if (resultMetrics) {
          metrics.itemsTotal.inc({ result: result.outcome });
          metrics.itemDurationSeconds.observe(ms / 1000);
        }
        if (result.outcome === "failed" || result.outcome === "retried") {
          const reason = result.reason ?? "internal";
          if (resultMetrics) metrics.errorsTotal.inc({ reason });
          failures.push({
            itemId: claim.itemId,
            outcome: result.outcome,
            reason,
            message: result.message ?? "",
          });
        }
        opts.onResult?.(claim, result, ms);
      },
    });
    return { ...summary, failures };
  } finally {
    clearInterval(timer);
    await retention?.stop();
    await refreshQueueDepth(stage, queue);
  }
}

/** `o` without its undefined fields, so that they do not override the defaults before them. */
function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
