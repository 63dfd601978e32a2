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
import { createLogger, type Logger } from "../../common/log/mod.ts";
import { type ManifestStore, openManifest } from "../../common/manifest/mod.ts";
import { createStageMetrics } from "../../common/metrics/mod.ts";
import { openTracker, type Tracker } from "../../common/mlflow/mod.ts";
import {
  type ObjectStore,
  openObjectStore,
  type OpenOptions,
} from "../../common/objectstore/mod.ts";
import { openStaging, type Staging } from "../../common/staging/mod.ts";
import { runWorker, type WorkerSummary } from "../../common/worker/mod.ts";
import type { TrainConfig } from "./config.ts";
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

/** The S3 options of `config` for `openObjectStore`. */
export function s3Options(config: Pick<TrainConfig, "s3">): OpenOptions {
  // The shared section is accepted as is (session token and part size in MiB included).
  return { s3: config.s3 };
}

/** Where the tracker of `config` keeps its data (for the manifest's training run rows). */
export function trackerLocation(config: Pick<TrainConfig, "mlflow">): string {
  return config.mlflow.trackingUri ?? `file://${config.mlflow.localDir}`;
}

/** The stage's logger as the configuration asks for it. */
export function createTrainLogger(config: Pick<TrainConfig, "log">): Logger {
  return createLogger({
    stage: "train",
    level: config.log.level,
    json: config.log.format === "json" ? true : config.log.format === "pretty" ? false : undefined,
  });
}

/** A train stage; see {@link createTrainStage}. */
export interface TrainStage {
  readonly config: TrainConfig;
  readonly deps: TrainDeps;
  readonly metrics: TrainMetrics;
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
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) {
      try {
        await c();
      } catch {
        // Closing is best effort; the process is going away or the test is done.
      }
    }
  };
  const log = given.log ?? createTrainLogger(config);
  const metrics = given.metrics ?? createTrainMetrics(createStageMetrics("train"));
  let status: Record<string, unknown> = { state: "idle" };
  try {
    const manifest: ManifestStore = given.manifest ?? await openManifest(config.manifest.url);
    if (!given.manifest) closers.push(() => manifest.close());
    const s3 = s3Options(config);
    const store: ObjectStore = given.store ?? await openObjectStore(config.objectStore.url, s3);
    if (!given.store) closers.push(() => store.close());
    let trainingStore: ObjectStore = given.trainingStore ?? store;
    const trainingUrl = config.stage.trainingUrl;
    if (
      !given.trainingStore && trainingUrl !== undefined && trainingUrl !== config.objectStore.url
    ) {
      const opened = await openObjectStore(trainingUrl, s3);
      closers.push(() => opened.close());
      trainingStore = opened;
    }
    const tracker: Tracker = given.tracker ?? openTracker({
      trackingUri: config.mlflow.trackingUri,
      localDir: config.mlflow.localDir,
      token: config.mlflow.token,
      username: config.mlflow.username,
      password: config.mlflow.password,
      retryBudgetSeconds: config.mlflow.retryBudgetSeconds,
      s3: s3.s3,
      logger: log,
    });
    if (!given.tracker) closers.push(() => tracker.close());
    const staging: Staging = given.staging ?? await openStaging({
      root: config.staging.root,
      fallbackRoot: config.staging.fallbackRoot,
      requireNvme: config.staging.requireNvme,
      minFreeMb: config.staging.minFreeMb,
      leaseTimeoutMs: config.staging.leaseTimeoutMs,
      stage: "train",
      workerId: config.worker.id,
      log,
      metrics: {
        setStagedBytes: (b: number) => metrics.stage.stagingBytes.set(b),
        setFreeBytes: (b: number) => metrics.stage.stagingFreeBytes.set(b),
      },
    });
    if (!given.staging) await staging.sweep();
    const deps: TrainDeps = {
      ...given,
      manifest,
      store,
      trainingStore,
      tracker,
      trackerUri: given.trackerUri ?? trackerLocation(config),
      staging,
      log,
      metrics,
    };

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
        status = {
          state: "idle",
          last: {
            ...what,
            ok: true,
            runId: r.runId,
            modelVersion: r.modelVersion,
            map50: Number.isFinite(r.map50) ? r.map50 : null,
            promoted: r.promoted,
            snapshotId: r.snapshotId,
            finishedAt: new Date().toISOString(),
          },
        };
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
      async work(opts = {}) {
        const counts = async () => {
          const c = (await manifest.workCounts(TRAIN_QUEUE))[TRAIN_QUEUE];
          if (c) {
            for (const [state, n] of Object.entries(c)) {
              metrics.stage.queueDepth.set({ state }, n);
            }
          }
        };
        await counts();
        return await runWorker({
          manifest,
          stage: TRAIN_QUEUE,
          owner: config.worker.id,
          // One training at a time per launcher host: it already uses every core (or GPU).
          concurrency: 1,
          batchSize: 1,
          leaseMs: config.worker.leaseMs,
          maxAttempts: config.worker.maxAttempts,
          idlePollMs: config.worker.idlePollMs,
          // A training stopped at shutdown is killed; give the trainer time to exit cleanly.
          graceMs: 30_000,
          signal: opts.signal,
          once: opts.once ?? false,
          log,
          permanentCodes: TRAIN_PERMANENT_CODES,
          progress: false,
          process: async (claim, ctx) => {
            ctx.log.info("training request claimed", { request: claim.itemId });
            await track(
              { mode: "worker", request: claim.itemId },
              () => trainOnce(config, { ...deps, signal: ctx.signal, log: ctx.log }),
            );
            await counts().catch(() => {});
          },
        });
      },
      async request(id: string) {
        const n = await manifest.enqueue(TRAIN_QUEUE, [id]);
        return n > 0;
      },
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
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
