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
import { stat } from "node:fs/promises";
import { basenameOf, type LabelStudioTask } from "../../common/annotations/mod.ts";
import { messageOf, reasonOf, SluiceError } from "../../common/errors/mod.ts";
import { createStageHandler, type StageHandler } from "../../common/http/mod.ts";
import { createLogger, type Logger } from "../../common/log/mod.ts";
import {
  type Claim,
  type Effects,
  type ImageRow,
  type ManifestStore,
  openManifest,
} from "../../common/manifest/mod.ts";
import { openTracker, type Tracker } from "../../common/mlflow/mod.ts";
import {
  ObjectNotFoundError,
  type ObjectStore,
  openObjectStore,
  type OpenOptions,
} from "../../common/objectstore/mod.ts";
import { openStaging, type Staging } from "../../common/staging/mod.ts";
import {
  type ItemContext,
  type ProgressOptions,
  runWorker,
  type WorkerSummary,
} from "../../common/worker/mod.ts";
import { type InferConfig, inFlightFor, parseApprovedTag } from "./config.ts";
import { type EvalPrediction, type EvalReport, evaluate } from "./evaluate.ts";
import { type ImagePrediction, InferenceEngine, type LoadedModel } from "./inference_engine.ts";
import type { DetectorSpec } from "./model_card.ts";
import { type InputItem, resolveInputs, storeKeyOf } from "./inputs.ts";
import { labelStudioPusher } from "./labelstudio_push.ts";
import { createInferMetrics, type InferMetrics } from "./metrics.ts";
import { fetchModel, loadModel } from "./model_loader.ts";
import {
  describeModel,
  inferQueue,
  type ModelRef,
  type ModelSelection,
  type ModelSource,
  resolveModelSource,
} from "./model_resolver.ts";
import { type OutputKeys, type PredictedImage, writeOutputs, writePart } from "./outputs.ts";
import { predictedImagesFromManifest } from "./predicted_images.ts";
import { defaultModelSourcePrefixes } from "./model_sources.ts";

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

interface Tag {
  id: string;
  url: string;
  fileName: string;
  uris: string[];
  /** Set by the batch hook: the part file holding this image's task. */
  partKey?: string;
}

function s3Options(config: InferConfig): OpenOptions["s3"] {
  // The shared section is accepted as is (session token and part size in MiB included).
  return config.s3;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

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
  const log = deps.log ?? createLogger({
    stage: INFER_STAGE,
    level: config.log.level,
    json: config.log.format === "json" ? true : config.log.format === "pretty" ? false : undefined,
  });
  const metrics = deps.metrics ?? createInferMetrics({ version: deps.version });
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        log.warn("close failed", { error: messageOf(err) });
      }
    }
  };
  try {
    let manifest = deps.manifest;
    if (!manifest) {
      const opened = manifest = await openManifest(config.manifest.url);
      closers.push(() => opened.close());
    }
    let store = deps.store;
    if (!store) {
      const opened = store = await openObjectStore(config.objectStore.url, {
        s3: s3Options(config),
      });
      closers.push(() => opened.close());
    }
    let tracker = deps.tracker;
    if (!tracker) {
      const opened = tracker = openTracker({
        trackingUri: config.mlflow.trackingUri,
        localDir: config.mlflow.localDir,
        token: config.mlflow.token,
        username: config.mlflow.username,
        password: config.mlflow.password,
        s3: s3Options(config),
        logger: log,
      });
      closers.push(() => opened.close());
    }
    let staging = deps.staging;
    if (!staging) {
      staging = await openStaging({
        root: config.staging.root,
        fallbackRoot: config.staging.fallbackRoot,
        requireNvme: config.staging.requireNvme,
        minFreeMb: config.staging.minFreeMb,
        leaseTimeoutMs: config.staging.leaseTimeoutMs,
        stage: INFER_STAGE,
        workerId: config.worker.id,
        log,
        metrics: {
          setStagedBytes: (b) => metrics.stagingBytes.set(b),
          setFreeBytes: (b) => metrics.stagingFreeBytes.set(b),
        },
      });
      const swept = await staging.sweep();
      if (swept.removed.length > 0) {
        log.info("removed stale staging leases", { removed: swept.removed.length });
      }
    }
    return assemble({ config, deps, log, metrics, manifest, store, tracker, staging, closeAll });
  } catch (err) {
    await closeAll();
    throw err;
  }
}

interface Parts {
  config: InferConfig;
  deps: InferDeps;
  log: Logger;
  metrics: InferMetrics;
  manifest: ManifestStore;
  store: ObjectStore;
  tracker: Tracker;
  staging: Staging;
  closeAll: () => Promise<void>;
}

function assemble(p: Parts): InferStage {
  const { config, log, metrics, manifest, store, tracker, staging } = p;
  const settings = config.stage;
  const inFlight = inFlightFor(settings);
  const selection: ModelSelection = {
    name: config.mlflow.modelName,
    alias: settings.alias,
    approvedTag: parseApprovedTag(settings.approvedTag),
    stage: settings.stage,
    ...(settings.modelUri ? { modelUri: settings.modelUri } : {}),
  };
  const push = settings.labelStudioUrl && settings.labelStudioToken && settings.labelStudioProjectId
    ? labelStudioPusher({
      url: settings.labelStudioUrl,
      token: settings.labelStudioToken,
      projectId: settings.labelStudioProjectId,
      fetch: p.deps.fetch,
    })
    : null;

  let engine: InferenceEngine<Tag> | null = null;
  let loading: Promise<LoadedModel> | null = null;
  let lastLoadError: string | null = null;
  let closed = false;
  let running = false;
  let generation: AbortController | null = null;
  let lastInputRun: EvalPrediction[] | null = null;
  // Every model version loaded so far: a version swapped out still has outputs to publish.
  const loaded = new Map<string, { ref: ModelRef; spec: DetectorSpec }>();
  // Versions with recorded predictions that their published files do not hold yet.
  const dirty = new Set<string>();
  // The model whose queue the worker loop is working on (null between generations).
  let loopRef: ModelRef | null = null;
  // Boxes and predicting model per claimed item, until its outcome is known.
  const boxesOf = new Map<string, { boxes: number; version: string }>();
  // Per-run counters the batch hook adds to.
  const counters = { pushed: 0, failedPushBatches: 0, swaps: 0 };
  const versionKey = (ref: Pick<ModelRef, "name" | "version">) => `${ref.name}\u0000${ref.version}`;
  const remember = (m: LoadedModel) => loaded.set(versionKey(m.ref), { ref: m.ref, spec: m.spec });

  const imageUrl = (uri: string, key: string | null): string =>
    settings.imageUrlPrefix && key !== null
      ? `${settings.imageUrlPrefix.replace(/\/+$/, "")}/${
        key.split("/").map(encodeURIComponent).join("/")
      }`
      : uri;
  const rowUrl = (row: ImageRow): string => {
    const uri = row.datasetUri ?? row.sourceUri;
    return imageUrl(uri, row.datasetUri ? storeKeyOf(store, row.datasetUri) : null);
  };

  const loadSource = async (source: ModelSource): Promise<LoadedModel> => {
    const fetched = await fetchModel(source, {
      root: staging.root,
      tracker,
      s3: s3Options(config),
      allowedSources: defaultModelSourcePrefixes(config),
      log,
    });
    return await loadModel(fetched, {
      provider: settings.executionProvider,
      intraOpThreads: settings.intraOpThreads,
      interOpThreads: settings.interOpThreads,
      log,
    });
  };

  const afterBatch = async (
    items: { tag: Tag; prediction: ImagePrediction }[],
    model: LoadedModel,
  ) => {
    const images: PredictedImage[] = items.map(({ tag, prediction }) => ({
      id: tag.id,
      url: tag.url,
      fileName: tag.fileName,
      width: prediction.width,
      height: prediction.height,
      boxes: prediction.boxes,
      score: prediction.score,
    }));
    // Upload before anything is recorded: a crash after this leaves a part the retry rewrites.
    const { key, tasks } = await writePart(store, settings.prefix, model.ref, images);
    for (const { tag } of items) tag.partKey = key;
    if (push) await pushTasks(tasks);
  };

  const pushTasks = async (tasks: LabelStudioTask[]) => {
    try {
      const r = await push!(tasks);
      counters.pushed += r.taskCount;
      metrics.labelStudioPushTotal.inc({ result: "ok" });
    } catch (err) {
      // The predictions stand (and are in labelstudio.json); only the import is missing.
      counters.failedPushBatches++;
      metrics.labelStudioPushTotal.inc({ result: "failed" });
      metrics.errorsTotal.inc({ reason: reasonOf(err) });
      log.warn("Label Studio import failed", { error: messageOf(err), tasks: tasks.length });
    }
  };

  const ensureEngine = async (): Promise<InferenceEngine<Tag>> => {
    if (engine) return engine;
    loading ??= (async () => {
      try {
        const source = await resolveModelSource(tracker, selection);
        const model = await loadSource(source);
        lastLoadError = null;
        return model;
      } catch (err) {
        lastLoadError = messageOf(err);
        throw err;
      } finally {
        loading = null;
      }
    })();
    const model = await loading;
    if (engine) {
      await model.session.close();
      return engine;
    }
    remember(model);
    engine = new InferenceEngine<Tag>(model, {
      batchSize: settings.batchSize,
      lingerMs: settings.lingerMs,
      scoreThreshold: settings.scoreThreshold,
      nmsIou: settings.nmsIou,
      log,
      onPrepared: (s) => metrics.preprocessSeconds.observe(s),
      onBatch: (b) => {
        metrics.batchSize.observe(b.size);
        metrics.inferenceSeconds.observe(b.inferenceSeconds);
        metrics.postprocessSeconds.observe(b.postprocessSeconds);
      },
      afterBatch,
    });
    metrics.setModel(model.ref);
    log.info("model in use", { model: describeModel(model.ref), provider: model.session.provider });
    return engine;
  };

  const checkModel = async (): Promise<boolean> => {
    const eng = await ensureEngine();
    const current = eng.model.ref;
    if (!eng.model.session.alive) {
      // The session's worker died (out of memory, a native crash): start a fresh one.
      log.error("inference session is gone: reloading the model", {
        model: describeModel(current),
      });
      const fresh = await loadSource(current);
      eng.swap(fresh).catch((err) =>
        log.warn("closing the dead session failed", { error: messageOf(err) })
      );
      return false;
    }
    if (!current.movable) return false;
    const source = await resolveModelSource(tracker, selection);
    if (source.name === current.name && source.version === current.version) {
      if (source.alias !== current.alias || source.via !== current.via) {
        log.info("approval changed, same version", { model: describeModel(source) });
      }
      return false;
    }
    log.info("approved model changed: loading", {
      from: describeModel(current),
      to: describeModel(source),
    });
    const next = await loadSource(source);
    remember(next);
    if (closed) {
      await next.session.close();
      return false;
    }
    // The old session closes once its batch in flight finishes; no need to wait for it here.
    eng.swap(next).catch((err) =>
      log.warn("closing the old model failed", { error: messageOf(err) })
    );
    metrics.setModel(next.ref);
    metrics.modelSwapsTotal.inc();
    counters.swaps++;
    generation?.abort();
    return true;
  };

  const enqueueCurrent = async (ref: ModelRef): Promise<number> => {
    const n = await manifest.enqueueForInference(inferQueue(ref), ref.name, ref.version, {
      includeAnnotated: settings.includeAnnotated,
    });
    if (n > 0) log.info("enqueued images for inference", { queue: inferQueue(ref), images: n });
    return n;
  };

  /** Updates the gauges; returns the images still pending or leased (null when unknown). */
  const refreshQueueDepth = async (ref: ModelRef): Promise<number | null> => {
    try {
      const queue = inferQueue(ref);
      const counts = (await manifest.workCounts(queue))[queue];
      metrics.setQueueDepth(counts);
      await staging.stagedBytes();
      await staging.freeBytes();
      return (counts?.pending ?? 0) + (counts?.leased ?? 0);
    } catch (err) {
      log.debug("could not refresh queue depth", { error: messageOf(err) });
      return null;
    }
  };

  /** Rebuilds one version's output files from the manifest (default: the model in use). */
  const publish = async (
    target?: { ref: ModelRef; spec: DetectorSpec },
  ): Promise<(OutputKeys & { images: number }) | null> => {
    const model = target ?? (await ensureEngine()).model;
    const { images, missing } = await predictedImagesFromManifest(manifest, model.ref, rowUrl);
    if (missing.length > 0) {
      log.warn("predictions without an image size were left out of the outputs", {
        images: missing.length,
        first: missing.slice(0, 5),
      });
    }
    const keys = await writeOutputs(store, settings.prefix, model.ref, model.spec, images);
    metrics.outputsPublishedTotal.inc();
    dirty.delete(versionKey(model.ref));
    log.info("outputs published", { dir: keys.dir, images: images.length });
    return { ...keys, images: images.length };
  };

  /** Publishes the versions no longer in use that recorded predictions since their last files. */
  const publishRetired = async (): Promise<void> => {
    const current = engine ? versionKey(engine.model.ref) : null;
    for (const key of [...dirty]) {
      const m = loaded.get(key);
      if (key !== current && m) await publish(m);
    }
  };

  /** Stages the image on local disk, then predicts it; errors name the image. */
  const predictStaged = async (
    tag: Tag,
    body: () => Promise<ReadableStream<Uint8Array> | Uint8Array>,
    expectedBytes: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<ImagePrediction> => {
    const eng = await ensureEngine();
    try {
      await using lease = await staging.lease(tag.id);
      const file = await lease.publish(tag.fileName, await body(), {
        ...(expectedBytes !== undefined ? { expectedBytes } : {}),
      });
      return await eng.predict(file.path, tag, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      if (err instanceof ObjectNotFoundError) {
        throw new SluiceError(
          "source_missing",
          `image ${tag.id} (${tag.fileName}): ${err.message}`,
          {
            cause: err,
          },
        );
      }
      throw new SluiceError(reasonOf(err), `image ${tag.id} (${tag.fileName}): ${messageOf(err)}`, {
        cause: err,
      });
    }
  };

  const processClaim = async (claim: Claim, ctx: ItemContext): Promise<Effects> => {
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
    const model = (await ensureEngine()).model.ref;
    const already = await manifest.listPredictions({
      modelName: model.name,
      modelVersion: model.version,
      imageIds: [image.id],
    });
    if (already.length > 0) {
      ctx.log.info("skipped: already predicted by this version", { model: describeModel(model) });
      return {};
    }
    const tag: Tag = {
      id: image.id,
      url: imageUrl(image.datasetUri, key),
      fileName: basenameOf(image.sourceKey || key),
      uris: [image.sourceUri, image.datasetUri],
    };
    const pred = await predictStaged(
      tag,
      () => store.get(key),
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
      if (closed) return "stage closed";
      if (!engine) {
        return lastLoadError ? `no model loaded: ${lastLoadError}` : "no model loaded yet";
      }
      await manifest.workCounts(inferQueue(engine.model.ref));
      return true;
    },
    routes: {
      "GET /status": () =>
        Promise.resolve(Response.json({
          stage: INFER_STAGE,
          running,
          model: engine ? { ...engine.model.ref, provider: engine.model.session.provider } : null,
          queue: engine ? inferQueue(engine.model.ref) : null,
          waiting: engine?.waiting ?? 0,
          lastLoadError,
        })),
    },
  });

  const runInputs = async (
    specs: readonly string[],
    summary: InferSummary,
    signal: AbortSignal | undefined,
  ) => {
    const eng = await ensureEngine();
    const items = await resolveInputs(specs, store, config.source.suffixes);
    const results: { item: InputItem; prediction: ImagePrediction }[] = [];
    let next = 0;
    const one = async (item: InputItem) => {
      const t0 = performance.now();
      try {
        let size: number | undefined;
        if (item.key !== null) size = (await store.head(item.key))?.size;
        else size = (await stat(new URL(item.uri))).size;
        if (size !== undefined && size > settings.maxBytes) {
          throw new SluiceError(
            "too_large",
            `image ${item.id} (${item.fileName}): ${size} bytes exceeds the limit of ${settings.maxBytes}`,
          );
        }
        const tag: Tag = {
          id: item.id,
          url: imageUrl(item.uri, item.key),
          fileName: item.fileName,
          uris: [item.uri],
        };
        const prediction = await predictStaged(
          tag,
          () => item.key !== null ? store.get(item.key) : item.read(),
          size,
          signal,
        );
        results.push({ item, prediction });
        summary.done++;
        metrics.itemsTotal.inc({ result: "done" });
        metrics.detectionsTotal.inc(prediction.boxes.length);
      } catch (err) {
        summary.failed++;
        const reason = reasonOf(err);
        metrics.itemsTotal.inc({ result: "failed" });
        metrics.errorsTotal.inc({ reason });
        summary.failures.push({
          item: item.uri,
          outcome: "failed",
          reason,
          message: messageOf(err),
        });
        log.warn("input failed", { item: item.uri, reason, error: messageOf(err) });
      } finally {
        metrics.itemDurationSeconds.observe((performance.now() - t0) / 1000);
      }
    };
    const lanes = Array.from(
      { length: Math.min(inFlight, Math.max(1, items.length)) },
      async () => {
        while (next < items.length && !signal?.aborted) await one(items[next++]);
      },
    );
    await Promise.all(lanes);
    const byModel = new Map<string, typeof results>();
    for (const r of results) {
      const k = `${r.prediction.model.name}\u0000${r.prediction.model.version}`;
      byModel.set(k, [...(byModel.get(k) ?? []), r]);
    }
    const model = eng.model;
    const mine = byModel.get(`${model.ref.name}\u0000${model.ref.version}`) ?? [];
    const images: PredictedImage[] = mine.map(({ item, prediction }) => ({
      id: item.id,
      url: imageUrl(item.uri, item.key),
      fileName: item.fileName,
      width: prediction.width,
      height: prediction.height,
      boxes: prediction.boxes,
      score: prediction.score,
    }));
    const keys = await writeOutputs(store, settings.prefix, model.ref, model.spec, images);
    metrics.outputsPublishedTotal.inc();
    summary.outputs = { ...keys, images: images.length };
    summary.predictions = results.length;
    summary.boxes = results.reduce((s, r) => s + r.prediction.boxes.length, 0);
    lastInputRun = results.map(({ item, prediction }) => ({
      imageId: item.id,
      uris: [item.uri],
      fileName: item.fileName,
      boxes: prediction.boxes,
    }));
  };

  const run = async (opts: InferRunOptions = {}): Promise<InferSummary> => {
    if (closed) {
      throw new SluiceError("stage_closed", "infer: expected an open stage, found it closed");
    }
    if (running) {
      throw new SluiceError(
        "already_running",
        "infer: expected one run at a time, found one running",
      );
    }
    running = true;
    const t0 = performance.now();
    const summary: InferSummary = {
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
    counters.pushed = 0;
    counters.failedPushBatches = 0;
    counters.swaps = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    let ticking: Promise<void> | null = null;
    try {
      // Long-running: keep trying to load a model (the registry may not have one yet).
      for (;;) {
        try {
          await ensureEngine();
          break;
        } catch (err) {
          if (opts.once || opts.inputs?.length || opts.signal?.aborted) throw err;
          metrics.errorsTotal.inc({ reason: reasonOf(err) });
          log.error("no model to run yet; retrying", {
            reason: reasonOf(err),
            error: messageOf(err),
          });
          await sleep(settings.aliasCheckSeconds * 1000, opts.signal);
          if (opts.signal?.aborted) return summary;
        }
      }
      if (opts.inputs && opts.inputs.length > 0) {
        await runInputs(opts.inputs, summary, opts.signal);
        return summary;
      }

      if (!opts.once) {
        const tick = async () => {
          try {
            const swapped = await checkModel();
            const ref = engine!.model.ref;
            // Only into the queue the loop works on: after a swap the loop fills the new queue
            // itself once the old one's claims are done, so images in flight are not queued
            // for the new version while it is about to predict them anyway.
            if (!swapped && loopRef && versionKey(loopRef) === versionKey(ref)) {
              summary.enqueued += await enqueueCurrent(ref);
            }
            const left = await refreshQueueDepth(ref);
            // Rebuilding the files reads every prediction of the version: do it once a pass
            // is over, not while the queue is still moving.
            if (dirty.has(versionKey(ref)) && left === 0) await publish();
          } catch (err) {
            metrics.errorsTotal.inc({ reason: reasonOf(err) });
            log.warn("periodic model check failed", {
              reason: reasonOf(err),
              error: messageOf(err),
            });
          }
        };
        timer = setInterval(() => {
          ticking ??= tick().finally(() => (ticking = null));
        }, settings.aliasCheckSeconds * 1000);
      }

      while (!opts.signal?.aborted && !closed) {
        const ref = loopRef = engine!.model.ref;
        const queue = inferQueue(ref);
        if (!summary.queues.includes(queue)) summary.queues.push(queue);
        summary.enqueued += await enqueueCurrent(ref);
        await refreshQueueDepth(ref);
        const gen = generation = new AbortController();
        const stop = () => gen.abort();
        opts.signal?.addEventListener("abort", stop, { once: true });
        try {
          const ws = await runWorker({
            manifest,
            stage: queue,
            owner: config.worker.id,
            concurrency: inFlight,
            batchSize: Math.min(config.worker.batchSize, inFlight),
            leaseMs: config.worker.leaseMs,
            maxAttempts: config.worker.maxAttempts,
            idlePollMs: config.worker.idlePollMs,
            graceMs: opts.graceMs,
            signal: gen.signal,
            once: opts.once ?? false,
            log,
            permanentCodes: INFER_PERMANENT_CODES,
            progress: opts.progress,
            process: processClaim,
            onResult: (_claim: Claim, result, ms) => {
              metrics.itemsTotal.inc({ result: result.outcome });
              metrics.itemDurationSeconds.observe(ms / 1000);
              const predicted = boxesOf.get(_claim.itemId);
              boxesOf.delete(_claim.itemId);
              if (result.outcome === "done" && predicted !== undefined) {
                dirty.add(predicted.version);
                summary.predictions++;
                summary.boxes += predicted.boxes;
                metrics.detectionsTotal.inc(predicted.boxes);
              }
              if (result.outcome === "failed" || result.outcome === "retried") {
                metrics.errorsTotal.inc({ reason: result.reason ?? "internal" });
                summary.failures.push({
                  item: _claim.itemId,
                  outcome: result.outcome,
                  reason: result.reason ?? "internal",
                  message: result.message ?? "",
                });
              }
            },
          });
          summary.done += ws.done;
          summary.failed += ws.failed;
          summary.retried += ws.retried;
          summary.leaseLost += ws.leaseLost;
          summary.released += ws.released;
        } finally {
          opts.signal?.removeEventListener("abort", stop);
          generation = null;
          loopRef = null;
        }
        if (opts.once) break;
        // The generation ended on a swap: what it finished for the old version gets its files.
        if (ticking) await ticking;
        await publishRetired();
      }
      if (ticking) await ticking;
      await publishRetired();
      if (dirty.size > 0 || opts.once) summary.outputs = await publish();
      return summary;
    } finally {
      clearInterval(timer);
      if (ticking) await ticking;
      if (engine) {
        const ref = engine.model.ref;
        summary.model = ref;
        summary.provider = engine.model.session.provider;
        await refreshQueueDepth(ref);
      }
      summary.swaps = counters.swaps;
      summary.labelStudio = { pushed: counters.pushed, failedBatches: counters.failedPushBatches };
      summary.ms = Math.round(performance.now() - t0);
      summary.imagesPerSecond = summary.ms > 0 ? (summary.done / summary.ms) * 1000 : 0;
      running = false;
    }
  };

  return {
    config,
    manifest,
    store,
    staging,
    tracker,
    metrics,
    handler,
    get model() {
      return engine?.model ?? null;
    },
    run,
    checkModel,
    publish: () => publish(),
    async evaluate(gt) {
      if (lastInputRun) return await evaluate({ gt, predictions: lastInputRun });
      const eng = await ensureEngine();
      return await evaluate({ gt, manifest, model: eng.model.ref });
    },
    async close() {
      if (closed) return;
      closed = true;
      generation?.abort();
      if (loading) await loading.catch(() => undefined);
      await engine?.close();
      await p.closeAll();
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
