/**
 * The infer stage assembled: the approved model (resolved in the MLflow registry, cached on
 * NVMe, loaded into an onnxruntime session in a worker thread), the batching engine, and the
 * worker loop that claims images from this model version's queue (`infer:<model>@<version>`,
 * filled by `enqueueForInference`), predicts them, writes each batch's Label Studio part (and
 * optionally imports it into a Label Studio project), and records the predictions with the
 * claim's completion.
 *
 * Long-running (`run()`), the stage re-checks the approval every `aliasCheckSeconds`: when it
 * moves, the new version is fetched and loaded while the old keeps working, swapped in between
 * batches, and the loop moves to the new version's queue. Each pass also enqueues newly
 * ingested images and republishes `labelstudio.json` / `coco_results.json` from the manifest.
 *
 * @example
 * ```ts
 * const summary = await runInferOnce(config, { manifest, store, tracker });
 * console.log(summary.model?.version, summary.done, summary.outputs?.labelStudio);
 * ```
 * @module
 */
import { basenameOf } from "../../common/annotations/mod.ts";
import { messageOf, reasonOf, SluiceError } from "../../common/errors/mod.ts";
import { createStageHandler, type StageHandler } from "../../common/http/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { Claim, Effects, ManifestStore } from "../../common/manifest/mod.ts";
import type { Tracker } from "../../common/mlflow/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import {
  createStageLogger,
  openResources,
  type QueueStage,
  refreshQueueDepth,
  RunGuard,
  runQueue,
  type StageResources,
} from "../../common/stage/mod.ts";
import type { Staging } from "../../common/staging/mod.ts";
import type { ItemContext, ProgressOptions, WorkerSummary } from "../../common/worker/mod.ts";
import { sleep } from "../../common/timing/mod.ts";
import { type InferConfig, inFlightFor, parseApprovedTag } from "./config.ts";
import { type EvalPrediction, type EvalReport, evaluate } from "./evaluate.ts";
import type { LoadedModel } from "./inference_engine.ts";
import { predictInputs } from "./input_mode.ts";
import { storeKeyOf } from "./inputs.ts";
import { createInferMetrics, type InferMetrics } from "./metrics.ts";
import { ModelSlot, versionKey } from "./model_slot.ts";
import { describeModel, inferQueue, type ModelRef } from "./model_resolver.ts";
import type { OutputKeys } from "./outputs.ts";
import { Publisher } from "./publisher.ts";
import { type ImageTag, predictStaged } from "./staged_predict.ts";

/** The stage name (metrics prefix, staging directory, logs). */
export const INFER_STAGE = "infer";

/** Reason codes that will not change on retry (besides the worker's `PERMANENT_CODES`). */
export const INFER_PERMANENT_CODES: readonly string[] = [
  "decode_failed",
  "unknown_image",
  "not_ingested",
  "foreign_uri",
  "source_missing",
  "too_large",
  "invalid_variant_geometry",
];

/** What the stage is built from; anything left out is opened from the configuration. */
export interface InferDeps {
  manifest?: ManifestStore;
  /** The dataset store: images are read from it and outputs written to it. */
  store?: ObjectStore;
  staging?: Staging;
  tracker?: Tracker;
  log?: Logger;
  metrics?: InferMetrics;
  /** For the Label Studio import (tests pass their own). */
  fetch?: typeof fetch;
  /** Build version for `sluice_infer_build_info`. */
  version?: string;
}

export interface InferRunOptions {
  /** Return once the queue (or the inputs) are done (default false: run until `signal`). */
  once?: boolean;
  signal?: AbortSignal;
  /** Predict these `--input` values (prefixes or `@list` files) instead of the queue. */
  inputs?: readonly string[];
  progress?: ProgressOptions | false;
  /** Grace period for in-flight items after abort or a model swap, ms. */
  graceMs?: number;
}

/** One item that failed (for good or to be retried). */
export interface InferFailure {
  item: string;
  outcome: "failed" | "retried";
  reason: string;
  message: string;
}

/** Totals of one {@link InferStage.run}. */
export interface InferSummary extends WorkerSummary {
  /** The model in use at the end. */
  model: ModelRef | null;
  /** The execution provider of that model's session. */
  provider: string | null;
  /** Queues worked on (more than one when the model changed). */
  queues: string[];
  /** Images added to the queues by this run. */
  enqueued: number;
  /** Images predicted and recorded by this run, and their boxes. */
  predictions: number;
  boxes: number;
  /** Model swaps during this run. */
  swaps: number;
  failures: InferFailure[];
  /** The published output files (null when nothing was published). */
  outputs: (OutputKeys & { images: number }) | null;
  labelStudio: { pushed: number; failedBatches: number };
  ms: number;
  imagesPerSecond: number;
}

/** A built infer stage; see {@link createInferStage}. */
export interface InferStage {
  readonly config: InferConfig;
  readonly manifest: ManifestStore;
  readonly store: ObjectStore;
  readonly staging: Staging;
  readonly tracker: Tracker;
  readonly metrics: InferMetrics;
  /** `deno serve`-compatible: /healthz, /readyz, /metrics, /, and GET /status (JSON). */
  readonly handler: StageHandler;
  readonly log: Logger;
  /** The model in use (null before the first load). */
  readonly model: LoadedModel | null;
  /** Predicts the queue (or `inputs`); with `once`, returns when done. */
  run(opts?: InferRunOptions): Promise<InferSummary>;
  /**
   * Re-resolves the approved model; when it changed, loads it and swaps it in (the loop then
   * moves to its queue). Returns true when the model changed.
   */
  checkModel(): Promise<boolean>;
  /** Writes labelstudio.json / coco_results.json of the current model from the manifest. */
  publish(): Promise<(OutputKeys & { images: number }) | null>;
  /** Scores the current model's predictions (or the last `--input` run's) against COCO ground truth. */
  evaluate(gt: string | unknown): Promise<EvalReport>;
  /** Closes the engine and what the stage opened (not what was passed in `deps`). */
  close(): Promise<void>;
}

/**
 * Builds the stage: opens what `deps` does not provide and sweeps this worker's stale staging
 * leases. The model is loaded by the first `run()` (or `checkModel()`).
 *
 * @example
 * ```ts
 * const stage = await createInferStage(config, { manifest, store });
 * try {
 *   await stage.run({ once: true });
 * } finally {
 *   await stage.close();
 * }
 * ```
 */
export async function createInferStage(
  config: InferConfig,
  deps: InferDeps = {},
): Promise<InferStage> {
  const log = deps.log ?? createStageLogger(INFER_STAGE, config.log);
  const metrics = deps.metrics ?? createInferMetrics({ version: deps.version });
  const res = await openResources(config, deps, {
    stage: INFER_STAGE,
    log,
    metrics,
    tracker: true,
  });
  return assemble({ config, deps, log, metrics, res, tracker: res.tracker });
}

/** The periodic model check of a long run. */
interface Ticker {
  /** Waits for a check in progress. */
  settle(): Promise<void>;
  /** Stops checking and waits for a check in progress. */
  stop(): Promise<void>;
}

interface Parts {
  config: InferConfig;
  deps: InferDeps;
  log: Logger;
  metrics: InferMetrics;
  res: StageResources;
  tracker: Tracker;
}

/** An empty summary for a run to add to. */
function emptySummary(): InferSummary {
  return {
    done: 0,
    failed: 0,
    retried: 0,
    leaseLost: 0,
    released: 0,
    model: null,
    provider: null,
    queues: [],
    enqueued: 0,
    predictions: 0,
    boxes: 0,
    swaps: 0,
    failures: [],
    outputs: null,
    labelStudio: { pushed: 0, failedBatches: 0 },
    ms: 0,
    imagesPerSecond: 0,
  };
}

/** Adds one generation's worker totals to the run's summary. */
function addTotals(summary: InferSummary, ws: WorkerSummary): void {
  summary.done += ws.done;
  summary.failed += ws.failed;
  summary.retried += ws.retried;
  summary.leaseLost += ws.leaseLost;
  summary.released += ws.released;
}

function assemble(p: Parts): InferStage {
  const { config, log, metrics, tracker } = p;
  const { manifest, store, staging } = p.res;
  const settings = config.stage;
  const inFlight = inFlightFor(settings);
  const guard = new RunGuard(INFER_STAGE);
  const publisher = new Publisher({ manifest, store, settings, metrics, log, fetch: p.deps.fetch });
  // Aborted to end the worker loop's current generation (on a model swap, or close).
  let generation: AbortController | null = null;
  let swaps = 0;
  const slot = new ModelSlot({
    tracker,
    staging,
    settings,
    selection: {
      name: config.mlflow.modelName,
      alias: settings.alias,
      approvedTag: parseApprovedTag(settings.approvedTag),
      stage: settings.stage,
      ...(settings.modelUri ? { modelUri: settings.modelUri } : {}),
    },
    s3: config.s3,
    metrics,
    log,
    afterBatch: publisher.afterBatch,
    onSwap: () => {
      swaps++;
      generation?.abort();
    },
  });
  let lastInputRun: EvalPrediction[] | null = null;
  // The model whose queue the worker loop is working on (null between generations).
  let loopRef: ModelRef | null = null;
  // Boxes and predicting model per claimed item, until its outcome is known.
  const boxesOf = new Map<string, { boxes: number; version: string }>();
  const queueStage: QueueStage = {
    name: INFER_STAGE,
    manifest,
    log,
    metrics,
    worker: config.worker,
  };

  const enqueueCurrent = async (ref: ModelRef): Promise<number> => {
    const n = await manifest.enqueueForInference(inferQueue(ref), ref.name, ref.version, {
      includeAnnotated: settings.includeAnnotated,
    });
    if (n > 0) log.info("enqueued images for inference", { queue: inferQueue(ref), images: n });
    return n;
  };

  /** Updates the gauges; returns the images still pending or leased (null when unknown). */
  const refreshDepth = async (ref: ModelRef): Promise<number | null> => {
    const counts = await refreshQueueDepth(queueStage, inferQueue(ref));
    await staging.stagedBytes().catch(() => undefined);
    await staging.freeBytes().catch(() => undefined);
    return counts === null ? null : (counts.pending ?? 0) + (counts.leased ?? 0);
  };

  /** Rebuilds one version's output files from the manifest (default: the model in use). */
  const publish = async (target?: { ref: ModelRef; spec: LoadedModel["spec"] }) =>
    await publisher.publish(target ?? (await slot.engine()).model);
  const publishRetired = () =>
    publisher.publishRetired(slot.known, slot.current ? versionKey(slot.current.ref) : null);

  /** One claimed image: checked, predicted once per model version, returned as effects. */
  const process = async (claim: Claim, ctx: ItemContext): Promise<Effects> => {
    const image = await manifest.getImage(claim.itemId);
    if (!image) {
      throw new SluiceError(
        "unknown_image",
        `image ${claim.itemId}: expected a manifest row, found none`,
      );
    }
    if (image.status === "deleted" || image.status === "duplicate") {
      ctx.log.info("skipped", { status: image.status });
      return {};
    }
    if (image.status !== "ingested" || !image.datasetUri) {
      throw new SluiceError(
        "not_ingested",
        `image ${image.id}: expected an ingested image with a dataset copy, found status ${image.status}`,
      );
    }
    const key = storeKeyOf(store, image.datasetUri);
    if (key === null) {
      throw new SluiceError(
        "foreign_uri",
        `image ${image.id}: dataset URI ${image.datasetUri} is not an object of ${store.url}`,
      );
    }
    if (image.size !== null && image.size > settings.maxBytes) {
      throw new SluiceError(
        "too_large",
        `image ${image.id}: ${image.size} bytes exceeds the limit of ${settings.maxBytes} bytes`,
      );
    }
    // Around a model swap an image can sit in the old version's queue and the new one's (this
    // worker or another drains the old queue with the new model): predict it once per version.
    const engine = await slot.engine();
    const model = engine.model.ref;
    const already = await manifest.listPredictions({
      modelName: model.name,
      modelVersion: model.version,
      imageIds: [image.id],
    });
    if (already.length > 0) {
      ctx.log.info("skipped: already predicted by this version", { model: describeModel(model) });
      return {};
    }
    const tag: ImageTag = {
      id: image.id,
      url: publisher.imageUrl(image.datasetUri, key),
      fileName: basenameOf(image.sourceKey || key),
      uris: [image.sourceUri, image.datasetUri],
    };
    const body = () => store.get(key);
    const pred = await predictStaged(
      engine,
      staging,
      tag,
      body,
      image.size ?? undefined,
      ctx.signal,
    );
    boxesOf.set(claim.itemId, { boxes: pred.boxes.length, version: versionKey(pred.model) });
    return {
      predictions: [{
        imageId: image.id,
        modelName: pred.model.name,
        modelVersion: pred.model.version,
        boxes: pred.boxes,
        score: pred.score,
        uri: tag.partKey ? store.uriFor(tag.partKey) : null,
      }],
    };
  };

  const handler = createStageHandler({
    stage: INFER_STAGE,
    metrics,
    log,
    ready: async () => {
      if (guard.closed) return "stage closed";
      const engine = slot.loaded;
      if (!engine) {
        return slot.lastLoadError
          ? `no model loaded: ${slot.lastLoadError}`
          : "no model loaded yet";
      }
      await manifest.workCounts(inferQueue(engine.model.ref));
      return true;
    },
    routes: {
      "GET /status": () => {
        const engine = slot.loaded;
        return Promise.resolve(Response.json({
          stage: INFER_STAGE,
          running: guard.running,
          model: engine ? { ...engine.model.ref, provider: engine.model.session.provider } : null,
          queue: engine ? inferQueue(engine.model.ref) : null,
          waiting: engine?.waiting ?? 0,
          lastLoadError: slot.lastLoadError,
        }));
      },
    },
  });

  /** Long-running: keeps trying to load a model (the registry may not have one yet). */
  const waitForModel = async (opts: InferRunOptions): Promise<boolean> => {
    for (;;) {
      try {
        await slot.engine();
        return true;
      } catch (err) {
        if (opts.once || opts.inputs?.length || opts.signal?.aborted) throw err;
        metrics.errorsTotal.inc({ reason: reasonOf(err) });
        log.error("no model to run yet; retrying", {
          reason: reasonOf(err),
          error: messageOf(err),
        });
        await sleep(settings.aliasCheckSeconds * 1000, opts.signal);
        if (opts.signal?.aborted) return false;
      }
    }
  };

  /** The `--input` mode: predict the named images; nothing is recorded. */
  const runInputs = async (
    inputs: readonly string[],
    summary: InferSummary,
    signal?: AbortSignal,
  ) => {
    const r = await predictInputs(inputs, {
      engine: await slot.engine(),
      store,
      staging,
      publisher,
      metrics,
      log,
      suffixes: config.source.suffixes,
      inFlight,
      maxBytes: settings.maxBytes,
      ...(signal ? { signal } : {}),
    });
    summary.done += r.done;
    summary.failed += r.failed;
    summary.failures.push(...r.failures.map(({ itemId, ...f }) => ({ item: itemId, ...f })));
    summary.outputs = r.outputs;
    summary.predictions = r.predictions;
    summary.boxes = r.boxes;
    lastInputRun = r.evalPredictions;
  };

  /**
   * Every `aliasCheckSeconds`: check the approval (swapping when it moved), enqueue new images
   * for the version in use, refresh the gauges, and publish the version's files once its queue
   * is empty. `settle()` waits for a check in progress; `stop()` also ends the timer.
   */
  const startTicker = (summary: InferSummary): Ticker => {
    let ticking: Promise<void> | null = null;
    const tick = async () => {
      try {
        const swapped = await slot.check();
        const ref = slot.current!.ref;
        // Only into the queue the loop works on: after a swap the loop fills the new queue
        // itself once the old one's claims are done, so images in flight are not queued
        // for the new version while it is about to predict them anyway.
        if (!swapped && loopRef && versionKey(loopRef) === versionKey(ref)) {
          summary.enqueued += await enqueueCurrent(ref);
        }
        const left = await refreshDepth(ref);
        // Rebuilding the files reads every prediction of the version: do it once a pass
        // is over, not while the queue is still moving.
        if (publisher.isDirty(ref) && left === 0) await publish();
      } catch (err) {
        metrics.errorsTotal.inc({ reason: reasonOf(err) });
        log.warn("periodic model check failed", { reason: reasonOf(err), error: messageOf(err) });
      }
    };
    const timer = setInterval(() => {
      ticking ??= tick().finally(() => (ticking = null));
    }, settings.aliasCheckSeconds * 1000);
    const settle = async () => {
      if (ticking) await ticking;
    };
    return {
      settle,
      stop: () => {
        clearInterval(timer);
        return settle();
      },
    };
  };

  /** Works the current model's queue until it is drained (`once`), swapped, or stopped. */
  const runGeneration = async (opts: InferRunOptions, summary: InferSummary) => {
    const ref = loopRef = slot.current!.ref;
    const queue = inferQueue(ref);
    if (!summary.queues.includes(queue)) summary.queues.push(queue);
    summary.enqueued += await enqueueCurrent(ref);
    await refreshDepth(ref);
    const gen = generation = new AbortController();
    const stop = () => gen.abort();
    opts.signal?.addEventListener("abort", stop, { once: true });
    try {
      const ws = await runQueue(queueStage, {
        queue,
        concurrency: inFlight,
        graceMs: opts.graceMs,
        signal: gen.signal,
        once: opts.once ?? false,
        permanentCodes: INFER_PERMANENT_CODES,
        progress: opts.progress,
        process,
        onResult: (claim, result) => {
          const predicted = boxesOf.get(claim.itemId);
          boxesOf.delete(claim.itemId);
          if (result.outcome === "done" && predicted !== undefined) {
            publisher.markDirty(predicted.version);
            summary.predictions++;
            summary.boxes += predicted.boxes;
            metrics.detectionsTotal.inc(predicted.boxes);
          }
        },
      });
      addTotals(summary, ws);
      summary.failures.push(...ws.failures.map(({ itemId, ...f }) => ({ item: itemId, ...f })));
    } finally {
      opts.signal?.removeEventListener("abort", stop);
      generation = null;
      loopRef = null;
    }
  };

  /** The queue mode: generations until stopped (or drained, `once`), then the files. */
  const runQueueMode = async (opts: InferRunOptions, summary: InferSummary) => {
    const ticker = opts.once ? null : startTicker(summary);
    try {
      while (!opts.signal?.aborted && !guard.closed) {
        await runGeneration(opts, summary);
        if (opts.once) break;
        // The generation ended on a swap: what it finished for the old version gets its files.
        await ticker?.settle();
        await publishRetired();
      }
      await ticker?.settle();
      await publishRetired();
      if (publisher.anyDirty || opts.once) summary.outputs = await publish();
    } finally {
      await ticker?.stop();
    }
  };

  const run = (opts: InferRunOptions = {}): Promise<InferSummary> =>
    guard.run(async () => {
      const t0 = performance.now();
      const summary = emptySummary();
      publisher.pushed = 0;
      publisher.failedPushBatches = 0;
      swaps = 0;
      try {
        if (!(await waitForModel(opts))) return summary;
        if (opts.inputs && opts.inputs.length > 0) {
          await runInputs(opts.inputs, summary, opts.signal);
        } else await runQueueMode(opts, summary);
        return summary;
      } finally {
        const current = slot.current;
        if (current) {
          summary.model = current.ref;
          summary.provider = current.session.provider;
          await refreshDepth(current.ref);
        }
        summary.swaps = swaps;
        summary.labelStudio = {
          pushed: publisher.pushed,
          failedBatches: publisher.failedPushBatches,
        };
        summary.ms = Math.round(performance.now() - t0);
        summary.imagesPerSecond = summary.ms > 0 ? (summary.done / summary.ms) * 1000 : 0;
      }
    });

  return {
    config,
    manifest,
    store,
    staging,
    tracker,
    metrics,
    log,
    handler,
    get model() {
      return slot.current;
    },
    run,
    checkModel: () => slot.check(),
    publish: () => publish(),
    async evaluate(gt) {
      if (lastInputRun) return await evaluate({ gt, predictions: lastInputRun });
      return await evaluate({ gt, manifest, model: (await slot.engine()).model.ref });
    },
    async close() {
      if (!guard.close()) return;
      generation?.abort();
      try {
        await slot.close();
      } finally {
        await p.res.close();
      }
    },
  };
}

/**
 * Builds the stage, predicts the queue (or `opts.inputs`) once, publishes the outputs, closes
 * what it opened, and returns the totals. For the demo and tests.
 *
 * @example
 * ```ts
 * const s = await runInferOnce(config, { manifest, store });
 * s.failures; // [{ item: "img_…", outcome: "failed", reason: "decode_failed", message: "image img_… (a.jpg): …" }]
 * ```
 */
export async function runInferOnce(
  config: InferConfig,
  deps: InferDeps = {},
  opts: Omit<InferRunOptions, "once"> = {},
): Promise<InferSummary> {
  const stage = await createInferStage(config, deps);
  try {
    return await stage.run({ progress: false, ...opts, once: true });
  } finally {
    await stage.close();
  }
}
