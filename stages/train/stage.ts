/**
 * The train stage assembled: opens what a run needs from the configuration (manifest, dataset
 * and training stores, tracker, staging, metrics), exposes the HTTP handler (/healthz, /readyz,
 * /metrics, GET /status), and runs trainings one of three ways: now (`runOnce`), as one rank of a
 * multi-host run (`runNode`), or as a worker claiming training requests from the manifest's
 * `train` queue (`work`), so several launcher hosts never start the same request twice.
 *
 * @example
 * ```ts
 * const stage = await createTrainStage(config, { manifest });
 * try {
 *   const r = await stage.runOnce();
 *   console.log(r.modelVersion, r.promoted);
 * } finally {
 *   await stage.close();
 * }
 * ```
 * @module
 */
import { messageOf } from "../../common/errors/mod.ts";
import { createStageHandler, type StageHandler } from "../../common/http/mod.ts";
import { createStageMetrics } from "../../common/metrics/mod.ts";
import { type ObjectStore, openObjectStore } from "../../common/objectstore/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import {
  createStageLogger,
  openResources,
  runQueue,
  type StageResources,
} from "../../common/stage/mod.ts";
import type { WorkerSummary } from "../../common/worker/mod.ts";
import type { TrainConfig } from "./config.ts";
import { startRetrainPolicy } from "../../common/review/retrain_policy.ts";
import {
  type NodeOptions,
  type TrainDeps,
  type TrainingResult,
  trainNode,
  trainOnce,
} from "./run_training.ts";
import { createTrainMetrics, type TrainMetrics } from "./train_metrics.ts";

/** The work queue training requests are claimed from. */
export const TRAIN_QUEUE = "train";

/** Reason codes that will not get better by retrying a request. */
export const TRAIN_PERMANENT_CODES: readonly string[] = [
  "empty_dataset",
  "trainer_invalid_input",
  "invalid_plan",
  "invalid_rank",
  "invalid_launcher",
];

/** Where the tracker of `config` keeps its data (for the manifest's training run rows). */
export function trackerLocation(config: Pick<TrainConfig, "mlflow">): string {
  return config.mlflow.trackingUri ?? `file://${config.mlflow.localDir}`;
}

/** A train stage; see {@link createTrainStage}. */
export interface TrainStage {
  readonly config: TrainConfig;
  readonly deps: TrainDeps;
  readonly metrics: TrainMetrics;
  readonly log: Logger;
  /** `deno serve`-compatible: /healthz, /readyz, /metrics, /, GET /status. */
  readonly handler: StageHandler;
  /** One training now. */
  runOnce(opts?: { signal?: AbortSignal }): Promise<TrainingResult>;
  /** One rank of a multi-host run (`sluice-train node`). */
  runNode(node: NodeOptions, opts?: { signal?: AbortSignal }): Promise<TrainingResult>;
  /** Claims training requests from the `train` queue until `signal` aborts (or drained, `once`). */
  work(opts?: { signal?: AbortSignal; once?: boolean }): Promise<WorkerSummary>;
  /** Enqueues a training request; returns whether it was new. */
  request(id: string): Promise<boolean>;
  /** Closes what the stage opened (not what was passed in `deps`). */
  close(): Promise<void>;
}

/**
 * Builds the stage, opening whatever `given` lacks from `config`.
 *
 * @example
 * ```ts
 * const stage = await createTrainStage(config);
 * await stage.request("nightly-2026-11-24");
 * ```
 */
export async function createTrainStage(
  config: TrainConfig,
  given: Partial<TrainDeps> = {},
): Promise<TrainStage> {
  const log = given.log ?? createStageLogger("train", config.log);
  const metrics = given.metrics ?? createTrainMetrics(createStageMetrics("train"));
  const res = await openResources(config, given, {
    stage: "train",
    log,
    metrics: metrics.stage,
    tracker: true,
  });
  try {
    const deps: TrainDeps = {
      ...given,
      manifest: res.manifest,
      store: res.store,
      trainingStore: given.trainingStore ?? await openTrainingStore(config, res),
      tracker: res.tracker,
      trackerUri: given.trackerUri ?? trackerLocation(config),
      staging: res.staging,
      log,
      metrics,
    };
    return assemble(config, deps, res, metrics);
  } catch (err) {
    await res.closers.closeAfterFailure();
    throw err;
  }
}

/** The training store: `train.trainingUrl` when it names another store, else the dataset store. */
async function openTrainingStore(config: TrainConfig, res: StageResources): Promise<ObjectStore> {
  const url = config.stage.trainingUrl;
  if (url === undefined || url === config.objectStore.url) return res.store;
  return res.closers.own("training store", await openObjectStore(url, { s3: config.s3 }));
}

/** The stage's status, metrics and modes around one set of opened dependencies. */
function assemble(
  config: TrainConfig,
  deps: TrainDeps,
  res: StageResources,
  metrics: TrainMetrics,
): TrainStage {
  const { manifest, log } = deps;
  let status: Record<string, unknown> = { state: "idle" };

  /** Runs one training, keeping `/status` and the item metrics up to date. */
  const track = async (
    what: Record<string, unknown>,
    fn: () => Promise<TrainingResult>,
  ): Promise<TrainingResult> => {
    const started = Date.now();
    status = { state: "training", startedAt: new Date(started).toISOString(), ...what };
    const end = metrics.stage.itemDurationSeconds.startTimer();
    try {
      const r = await fn();
      metrics.stage.itemsTotal.inc({ result: "ok" });
      status = { state: "idle", last: { ...what, ...resultStatus(r) } };
      return r;
    } catch (err) {
      metrics.stage.itemsTotal.inc({ result: "failed" });
      status = {
        state: "idle",
        last: { ...what, ok: false, error: messageOf(err), finishedAt: new Date().toISOString() },
      };
      throw err;
    } finally {
      end();
    }
  };

  const handler = createStageHandler({
    stage: "train",
    metrics: metrics.stage,
    log,
    ready: async () => {
      await manifest.workCounts(TRAIN_QUEUE);
      return true;
    },
    routes: {
      "GET /status": () => Promise.resolve(Response.json(status)),
    },
  });

  return {
    config,
    deps,
    metrics,
    log,
    handler,
    runOnce: (opts = {}) =>
      track(
        { mode: "run" },
        () => trainOnce(config, { ...deps, signal: opts.signal ?? deps.signal }),
      ),
    runNode: (node, opts = {}) =>
      track(
        { mode: "node", rank: node.rank, plan: node.planKey },
        () => trainNode(config, { ...deps, signal: opts.signal ?? deps.signal }, node),
      ),
    work(opts = {}) {
      // Issue 16: the retrain policy enqueues requests that this same loop claims.
      const stopPolicy = opts.once
        ? () => {}
        : startRetrainPolicy(manifest, config.stage, (m, f) => log.info(m, f));
      return runQueue(
        { name: "train", manifest, log, metrics: metrics.stage, worker: config.worker },
        {
          queue: TRAIN_QUEUE,
          // One training at a time per launcher host: it already uses every core (or GPU).
          concurrency: 1,
          batchSize: 1,
          // A prefetched request would wait behind this training while another launcher idles.
          prefetch: 0,
          // A training stopped at shutdown is killed; give the trainer time to exit cleanly.
          graceMs: 30_000,
          signal: opts.signal,
          once: opts.once ?? false,
          permanentCodes: TRAIN_PERMANENT_CODES,
          progress: false,
          // `track` counts each training.
          resultMetrics: false,
          process: async (claim, ctx) => {
            ctx.log.info("training request claimed", { request: claim.itemId });
            await track(
              { mode: "worker", request: claim.itemId },
              () => trainOnce(config, { ...deps, signal: ctx.signal, log: ctx.log }),
            );
          },
        },
      ).finally(stopPolicy);
    },
    async request(id: string) {
      const n = await manifest.enqueue(TRAIN_QUEUE, [id]);
      return n > 0;
    },
    close: () => res.close(),
  };
}

/** The `/status` fields of a finished training. */
function resultStatus(r: TrainingResult): Record<string, unknown> {
  return {
    ok: true,
    runId: r.runId,
    modelVersion: r.modelVersion,
    map50: Number.isFinite(r.map50) ? r.map50 : null,
    promoted: r.promoted,
    snapshotId: r.snapshotId,
    finishedAt: new Date().toISOString(),
  };
}

/**
 * One training with whatever `deps` lacks opened from `config` (and closed again): the entry
 * the demo and tests use. Returns `{ runId, modelVersion, map50, map50_95, promoted, … }`.
 *
 * @example
 * ```ts
 * const { runId, modelVersion, map50, promoted } = await runTraining(config, { manifest });
 * ```
 */
export async function runTraining(
  config: TrainConfig,
  deps: Partial<TrainDeps> = {},
): Promise<TrainingResult> {
  const stage = await createTrainStage(config, deps);
  try {
    return await stage.runOnce();
  } finally {
    await stage.close();
  }
}
