/**
 * The infer stage assembled: the approved model (resolved in the MLflow registry, cached on
 * NVMe, loaded into an onnxruntime session in a worker thread), the batching engine, and the
 * worker loop that claims images from this model version's queue
 * (`infer:<model>@<version>#<registry key>`, filled by `enqueueForInference`), predicts them,
 * writes each batch's Label Studio part (and optionally imports it into a Label Studio project),
 * and records the predictions, with the registry the model came from, with the claim's completion.
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
import { type EvalPrediction, type EvalReport, evaluate, type ScoredSet } from "./evaluate.ts";
import { publishEvalPictures } from "./eval_pictures.ts";
import type { LoadedModel } from "./inference_engine.ts";
import { predictInputs } from "./input_mode.ts";
import { storeKeyOf } from "./inputs.ts";
import { uriOfRecorded } from "../../common/objectstore/recorded_key.ts";
import { type LabelStudioTarget, loadLabelStudioNames } from "./labelstudio_names.ts";
import { createInferMetrics, type InferMetrics } from "./metrics.ts";
import { type KnownModel, ModelSlot, versionKey } from "./model_slot.ts";
import { defaultModelSourcePrefixes } from "./model_sources.ts";
import { describeModel, inferQueue, type ModelRef } from "./model_resolver.ts";
import { type OutputKeys, outputKeys } from "./outputs.ts";
import { type PublishedOutputs, Publisher } from "./publisher.ts";
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
  // Read before anything is opened: a bad label config stops the stage at start-up.
  const lsTarget = await loadLabelStudioNames(config.stage);
  const res = await openResources(config, deps, {
    stage: INFER_STAGE,
    log,
    metrics,
    tracker: true,
  });
  return assemble(
    buildContext({ config, deps, log, metrics, res, tracker: res.tracker, lsTarget }),
  );
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
  /** Label Studio names for pre-annotations (from infer.labelStudioLabelConfig). */
  lsTarget: LabelStudioTarget;
}

/** The stage's parts and its mutable state, shared by the functions below. */
interface Ctx extends Parts {
  settings: InferConfig["stage"];
  manifest: ManifestStore;
  store: ObjectStore;
  staging: Staging;
  inFlight: number;
  guard: RunGuard;
  publisher: Publisher;
  slot: ModelSlot;
  queueStage: QueueStage;
  /** Aborted to end the worker loop's current generation (on a model swap, or close). */
  generation: AbortController | null;
  swaps: number;
  /** The model whose queue the worker loop is working on (null between generations). */
  loopRef: ModelRef | null;
  /** The last `--input` run's predictions, for `evaluate`. */
  lastInputRun: EvalPrediction[] | null;
  /** Boxes and predicting model per claimed item, until its outcome is known. */
  boxesOf: Map<string, { boxes: number; version: string }>;
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

/** The model slot, the publisher and the run state around the opened resources. */
function buildContext(p: Parts): Ctx {
  const { config, log, metrics, tracker } = p;
  const { manifest, store, staging } = p.res;
  const settings = config.stage;
  const publisher = new Publisher({
    manifest,
    store,
    settings,
    metrics,
    log,
    fetch: p.deps.fetch,
    labelStudioNames: p.lsTarget.names,
  });
  const ctx: Ctx = {
    ...p,
    settings,
    manifest,
    store,
    staging,
    inFlight: inFlightFor(settings),
    guard: new RunGuard(INFER_STAGE),
    publisher,
    slot: new ModelSlot({
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
      allowedSources: defaultModelSourcePrefixes(config),
      metrics,
      log,
      afterBatch: publisher.afterBatch,
      checkLabels: (labels) => p.lsTarget.checkLabels(labels),
      onSwap: () => {
        ctx.swaps++;
        ctx.generation?.abort();
      },
    }),
    queueStage: { name: INFER_STAGE, manifest, log, metrics, worker: config.worker },
    generation: null,
    swaps: 0,
    loopRef: null,
    lastInputRun: null,
    boxesOf: new Map(),
  };
  return ctx;
}

function assemble(ctx: Ctx): InferStage {
  const { config, manifest, store, staging, tracker, metrics, log, slot, guard } = ctx;
  return {
    config,
    manifest,
    store,
    staging,
    tracker,
    metrics,
    log,
    handler: inferHandler(ctx),
    get model() {
      return slot.current;
    },
    run: (opts: InferRunOptions = {}) => guard.run(() => runInfer(ctx, opts)),
    checkModel: () => slot.check(),
    publish: () => publish(ctx),
    async evaluate(gt) {
      let scored: ScoredSet | undefined;
      const onScored = (x: ScoredSet) => (scored = x);
      const eng = await slot.engine();
      const report = ctx.lastInputRun
        ? await evaluate({ gt, predictions: ctx.lastInputRun, onScored })
        : await evaluate({ gt, manifest, model: eng.model.ref, onScored });
      if (scored) {
        const dir = outputKeys(ctx.settings.prefix, eng.model.ref).dir;
        report.pictures = await publishEvalPictures(store, dir, scored).catch((err) => {
          log.warn("could not draw the evaluation pictures", { err: messageOf(err) });
          return [];
        });
      }
      return report;
    },
    async close() {
      if (!guard.close()) return;
      ctx.generation?.abort();
      try {
        await slot.close();
      } finally {
        await ctx.res.close();
      }
    },
  };
}

/** Queues the images the version in use has not predicted yet. */
async function enqueueCurrent(ctx: Ctx, ref: ModelRef): Promise<number> {
  const n = await ctx.manifest.enqueueForInference(inferQueue(ref), ref.name, ref.version, {
    includeAnnotated: ctx.settings.includeAnnotated,
    ...(ref.registry ? { registry: ref.registry } : {}),
  });
  if (n > 0) ctx.log.info("enqueued images for inference", { queue: inferQueue(ref), images: n });
  return n;
}

/** Updates the gauges; returns the images still pending or leased (null when unknown). */
async function refreshDepth(ctx: Ctx, ref: ModelRef): Promise<number | null> {
  const counts = await refreshQueueDepth(ctx.queueStage, inferQueue(ref));
  await ctx.staging.stagedBytes().catch(() => undefined);
  await ctx.staging.freeBytes().catch(() => undefined);
  return counts === null ? null : (counts.pending ?? 0) + (counts.leased ?? 0);
}

/** Rebuilds one version's output files from the manifest (default: the model in use). */
async function publish(ctx: Ctx, target?: KnownModel): Promise<PublishedOutputs> {
  return await ctx.publisher.publish(target ?? (await ctx.slot.engine()).model);
}

/** Publishes the versions swapped out that recorded predictions since their last files. */
function publishRetired(ctx: Ctx): Promise<void> {
  const current = ctx.slot.current;
  return ctx.publisher.publishRetired(ctx.slot.known, current ? versionKey(current.ref) : null);
}

/** The image row of a claim, checked: null when it gets no prediction (deleted, duplicate). */
async function claimedImage(ctx: Ctx, claim: Claim, item: ItemContext) {
  const { store, settings } = ctx;
  const image = await ctx.manifest.getImage(claim.itemId);
  if (!image) {
    throw new SluiceError(
      "unknown_image",
      `image ${claim.itemId}: expected a manifest row, found none`,
    );
  }
  if (image.status === "deleted" || image.status === "duplicate") {
    item.log.info("skipped", { status: image.status });
    return null;
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
  return { image: { ...image, datasetUri: image.datasetUri }, key };
}

/** One claimed image: checked, predicted once per model version, returned as effects. */
async function processClaim(ctx: Ctx, claim: Claim, item: ItemContext): Promise<Effects> {
  const { manifest, store } = ctx;
  const claimed = await claimedImage(ctx, claim, item);
  if (claimed === null) return {};
  const { image, key } = claimed;
  // Around a model swap an image can sit in the old version's queue and the new one's (this
  // worker or another drains the old queue with the new model): predict it once per version.
  const engine = await ctx.slot.engine();
  const model = engine.model.ref;
  const already = await manifest.listPredictions({
    modelName: model.name,
    modelVersion: model.version,
    imageIds: [image.id],
    ...(model.registry ? { registry: model.registry } : {}),
  });
  if (already.length > 0) {
    item.log.info("skipped: already predicted by this version", { model: describeModel(model) });
    return {};
  }
  const tag: ImageTag = {
    id: image.id,
    url: ctx.publisher.imageUrl(uriOfRecorded(store, image.datasetUri), key),
    fileName: basenameOf(image.sourceKey || key),
    uris: [image.sourceUri, uriOfRecorded(store, image.datasetUri)],
  };
  const body = () => store.get(key);
  const pred = await predictStaged(
    engine,
    ctx.staging,
    tag,
    body,
    image.size ?? undefined,
    item.signal,
    ctx.metrics,
  );
  ctx.boxesOf.set(claim.itemId, { boxes: pred.boxes.length, version: versionKey(pred.model) });
  return {
    predictions: [{
      imageId: image.id,
      modelName: pred.model.name,
      modelVersion: pred.model.version,
      ...(pred.model.registry ? { registry: pred.model.registry } : {}),
      boxes: pred.boxes,
      score: pred.score,
      uri: tag.partKey ?? null,
    }],
  };
}

/** /healthz, /readyz (ready once a model is loaded), /metrics, / and GET /status. */
function inferHandler(ctx: Ctx): StageHandler {
  const { slot, guard, manifest } = ctx;
  return createStageHandler({
    stage: INFER_STAGE,
    metrics: ctx.metrics,
    log: ctx.log,
    closed: () => guard.closed,
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
}

/** Long-running: keeps trying to load a model (the registry may not have one yet). */
async function waitForModel(ctx: Ctx, opts: InferRunOptions): Promise<boolean> {
  for (;;) {
    try {
      await ctx.slot.engine();
      return true;
    } catch (err) {
      if (opts.once || opts.inputs?.length || opts.signal?.aborted) throw err;
      ctx.metrics.errorsTotal.inc({ reason: reasonOf(err) });
      ctx.log.error("no model to run yet; retrying", {
        reason: reasonOf(err),
        error: messageOf(err),
      });
      await sleep(ctx.settings.aliasCheckSeconds * 1000, opts.signal);
      if (opts.signal?.aborted) return false;
    }
  }
}

/** The `--input` mode: predict the named images; nothing is recorded. */
async function runInputs(
  ctx: Ctx,
  inputs: readonly string[],
  summary: InferSummary,
  signal?: AbortSignal,
): Promise<void> {
  const r = await predictInputs(inputs, {
    engine: await ctx.slot.engine(),
    store: ctx.store,
    staging: ctx.staging,
    publisher: ctx.publisher,
    metrics: ctx.metrics,
    log: ctx.log,
    suffixes: ctx.config.source.suffixes,
    inFlight: ctx.inFlight,
    maxBytes: ctx.settings.maxBytes,
    ...(signal ? { signal } : {}),
  });
  summary.done += r.done;
  summary.failed += r.failed;
  summary.failures.push(...r.failures.map(({ itemId, ...f }) => ({ item: itemId, ...f })));
  summary.outputs = r.outputs;
  summary.predictions = r.predictions;
  summary.boxes = r.boxes;
  ctx.lastInputRun = r.evalPredictions;
}

/**
 * Every `aliasCheckSeconds`: check the approval (swapping when it moved), enqueue new images
 * for the version in use, refresh the gauges, and publish the version's files once its queue
 * is empty.
 */
function startTicker(ctx: Ctx, summary: InferSummary): Ticker {
  let ticking: Promise<void> | null = null;
  const tick = async () => {
    try {
      const swapped = await ctx.slot.check();
      const ref = ctx.slot.current!.ref;
      // Only into the queue the loop works on: after a swap the loop fills the new queue
      // itself once the old one's claims are done, so images in flight are not queued
      // for the new version while it is about to predict them anyway.
      if (!swapped && ctx.loopRef && versionKey(ctx.loopRef) === versionKey(ref)) {
        summary.enqueued += await enqueueCurrent(ctx, ref);
      }
      const left = await refreshDepth(ctx, ref);
      // Rebuilding the files reads every prediction of the version: do it once a pass
      // is over, not while the queue is still moving.
      if (ctx.publisher.isDirty(ref) && left === 0) await publish(ctx);
    } catch (err) {
      ctx.metrics.errorsTotal.inc({ reason: reasonOf(err) });
      ctx.log.warn("periodic model check failed", {
        reason: reasonOf(err),
        error: messageOf(err),
      });
    }
  };
  const timer = setInterval(() => {
    ticking ??= tick().finally(() => (ticking = null));
  }, ctx.settings.aliasCheckSeconds * 1000);
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
}

/** Works the current model's queue until it is drained (`once`), swapped, or stopped. */
async function runGeneration(ctx: Ctx, opts: InferRunOptions, summary: InferSummary) {
  const ref = ctx.loopRef = ctx.slot.current!.ref;
  const queue = inferQueue(ref);
  if (!summary.queues.includes(queue)) summary.queues.push(queue);
  summary.enqueued += await enqueueCurrent(ctx, ref);
  await refreshDepth(ctx, ref);
  const gen = ctx.generation = new AbortController();
  const stop = () => gen.abort();
  opts.signal?.addEventListener("abort", stop, { once: true });
  try {
    const ws = await runQueue(ctx.queueStage, {
      queue,
      concurrency: ctx.inFlight,
      // `inFlight` slots already keep the micro-batcher fed; a prefetched claim would only be
      // released at a model swap. Completions are still grouped (queueBatching).
      prefetch: 0,
      graceMs: opts.graceMs,
      signal: gen.signal,
      once: opts.once ?? false,
      permanentCodes: INFER_PERMANENT_CODES,
      progress: opts.progress,
      process: (claim, item) => processClaim(ctx, claim, item),
      onResult: (claim, result) => {
        const predicted = ctx.boxesOf.get(claim.itemId);
        ctx.boxesOf.delete(claim.itemId);
        if (result.outcome === "done" && predicted !== undefined) {
          ctx.publisher.markDirty(predicted.version);
          summary.predictions++;
          summary.boxes += predicted.boxes;
          ctx.metrics.detectionsTotal.inc(predicted.boxes);
        }
      },
    });
    addTotals(summary, ws);
    summary.failures.push(...ws.failures.map(({ itemId, ...f }) => ({ item: itemId, ...f })));
  } finally {
    opts.signal?.removeEventListener("abort", stop);
    ctx.generation = null;
    ctx.loopRef = null;
  }
}

/** The queue mode: generations until stopped (or drained, `once`), then the files. */
async function runQueueMode(ctx: Ctx, opts: InferRunOptions, summary: InferSummary) {
  const ticker = opts.once ? null : startTicker(ctx, summary);
  try {
    while (!opts.signal?.aborted && !ctx.guard.closed) {
      await runGeneration(ctx, opts, summary);
      if (opts.once) break;
      // The generation ended on a swap: what it finished for the old version gets its files.
      await ticker?.settle();
      await publishRetired(ctx);
    }
    await ticker?.settle();
    await publishRetired(ctx);
    if (ctx.publisher.anyDirty || opts.once) summary.outputs = await publish(ctx);
  } finally {
    await ticker?.stop();
  }
}

/** One run: wait for a model, then the `--input` mode or the queue mode; totals at the end. */
async function runInfer(ctx: Ctx, opts: InferRunOptions): Promise<InferSummary> {
  const { slot, publisher } = ctx;
  const t0 = performance.now();
  const summary = emptySummary();
  publisher.pushed = 0;
  publisher.failedPushBatches = 0;
  ctx.swaps = 0;
  try {
    if (!(await waitForModel(ctx, opts))) return summary;
    if (opts.inputs && opts.inputs.length > 0) {
      await runInputs(ctx, opts.inputs, summary, opts.signal);
    } else await runQueueMode(ctx, opts, summary);
    return summary;
  } finally {
    const current = slot.current;
    if (current) {
      summary.model = current.ref;
      summary.provider = current.session.provider;
      await refreshDepth(ctx, current.ref);
    }
    summary.swaps = ctx.swaps;
    summary.labelStudio = { pushed: publisher.pushed, failedBatches: publisher.failedPushBatches };
    summary.ms = Math.round(performance.now() - t0);
    summary.imagesPerSecond = summary.ms > 0 ? (summary.done / summary.ms) * 1000 : 0;
  }
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
