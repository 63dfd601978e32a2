/**
 * The ingest stage assembled from its parts: discovery (listing, reconciliation), events
 * (webhook route, SQS consumer), the worker that processes claimed images, annotation import
 * and export, and the HTTP handler. `main.ts` runs it as a process; tests and the demo run it
 * in-process with their own stores.
 *
 * @example
 * ```ts
 * const stage = createIngestStage(config, { manifest, source, objectStore, staging });
 * await stage.discover();
 * await stage.work({ once: true });
 * await stage.close();
 * ```
 * @module
 */
import { SQSClient } from "@aws-sdk/client-sqs";
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import { createStageHandler, type RouteHandler, type StageHandler } from "../../common/http/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { Claim, Effects, ManifestStore } from "../../common/manifest/mod.ts";
import { createStageMetrics, type StageMetrics } from "../../common/metrics/mod.ts";
import { type ObjectStore, openObjectStore } from "../../common/objectstore/mod.ts";
import { awsClientOptions } from "../../common/objectstore/s3.ts";
import { awsConnectionOf } from "../../common/objectstore/s3_settings.ts";
import type { Staging } from "../../common/staging/mod.ts";
import { stagingBackpressure } from "../../common/staging/backpressure.ts";
import {
  createStageLogger,
  type GivenResources,
  openResources,
  type QueueStage,
  type QueueSummary,
  refreshQueueDepth as refreshDepth,
  runQueue,
} from "../../common/stage/mod.ts";
import type { ItemContext, ProgressOptions, WorkerSummary } from "../../common/worker/mod.ts";
import {
  type AnnotationExport,
  exportAnnotations,
  type ExportOptions,
} from "./annotations_export.ts";
import type { AnnotationImportSummary } from "./annotations_import.ts";
import { applySourceEvents, type ApplySummary, type EventOrigin } from "./apply_events.ts";
import type { AnnotationFormat, IngestConfig } from "./config.ts";
import type { DiscoverSummary } from "./discover.ts";
import { discoverByMode } from "./discovery_mode.ts";
import type { DiscoverOptions } from "./discover.ts";
import { createIngestMetrics, type IngestMetrics } from "./metrics.ts";
import { createItemProcessor, INGEST_PERMANENT_CODES, type ProcessDeps } from "./process_item.ts";
import type { ParsedNotification } from "./s3_event.ts";
import { type SourceLocation, sourceLocation } from "./source_location.ts";
import { receiveOnce, type ReceiveSummary, runSqsConsumer } from "./sqs_consumer.ts";
import { createWebhookRoute } from "./webhook.ts";
import { webhookAuth } from "./webhook_auth.ts";
import { createLabelStudioWebhookRoute } from "./labelstudio_webhook.ts";
import { reconcileLabelStudioReviews } from "./labelstudio_reconcile.ts";
import { registerReviewMetrics } from "../../common/review/review_metrics.ts";
import { ContentLocks } from "./_content_locks.ts";
import { createAnnotationImporter } from "./annotation_importer.ts";
import { sleep } from "../../common/timing/mod.ts";
import { isLoopback } from "../../common/http/serve_entry_guard.ts";
import { Slots } from "../../common/worker/slots.ts";
import { ingestDecodeSlots } from "./ingest_concurrency.ts";
import { fusedRenderFor, type FusedRenderSettings } from "./fused_render_settings.ts";

/** What the stage runs against. */
export interface IngestDeps {
  manifest: ManifestStore;
  /** The raw bucket (config `source.url`). */
  source: ObjectStore;
  /** The dataset store (config `objectStore.url`). */
  objectStore: ObjectStore;
  staging: Staging;
  /** Default: a fresh `sluice_ingest_*` registry. */
  metrics?: StageMetrics;
  log?: Logger;
  /** SQS client for `ingest.sqsQueueUrl` (default: built from the config, closed by `close`). */
  sqsClient?: SQSClient;
  /** `ingest.renderVariants`: normalize's section (default: normalize's defaults). */
  normalize?: FusedRenderSettings;
}

/** What a backfill (`runOnce`) did. */
export interface IngestOnceSummary {
  discovered: DiscoverSummary;
  annotations: AnnotationImportSummary[];
  worker: WorkerSummary;
  /** Images in the manifest by status, after the run. */
  images: Record<string, number>;
}

/** Options of a worker run. */
export interface WorkOptions {
  /** Drain mode: return once the queue is empty. */
  once?: boolean;
  signal?: AbortSignal;
  progress?: ProgressOptions | false;
}

export interface IngestStage {
  readonly config: IngestConfig;
  readonly metrics: IngestMetrics;
  readonly log: Logger;
  readonly location: SourceLocation;
  /** `/healthz`, `/readyz`, `/metrics`, `GET|HEAD /`, and `POST /events` when the webhook is on. */
  readonly handler: StageHandler;
  /** One listing pass (resuming an unfinished one); `reconcile` counts what events missed. */
  discover(
    opts?: { reconcile?: boolean; maxObjects?: number; signal?: AbortSignal },
  ): Promise<DiscoverSummary>;
  /** Records parsed notification events (what the webhook and SQS consumer call). */
  recordEvents(parsed: ParsedNotification, origin: EventOrigin): Promise<ApplySummary>;
  /** Processes one claimed item into its effects (the worker's `process`). */
  processItem(claim: Claim, ctx: ItemContext): Promise<Effects>;
  /** Runs the claim → process → complete loop. */
  work(opts?: WorkOptions): Promise<WorkerSummary>;
  /** Imports one annotation file by key, URI or (with `preferLocal`) local path. */
  importAnnotations(
    ref: string,
    format?: AnnotationFormat | "auto",
    opts?: { preferLocal?: boolean; cwd?: string },
  ): Promise<AnnotationImportSummary>;
  /**
   * Imports the files in `ingest.annotations`. With `onlyIfNeeded`, a file is skipped when its
   * content is unchanged since its last successful import and that import matched every record.
   */
  importConfiguredAnnotations(
    opts?: { onlyIfNeeded?: boolean },
  ): Promise<AnnotationImportSummary[]>;
  /** The COCO or Label Studio export of ingested images and their annotations. */
  exportAnnotations(opts: ExportOptions): Promise<AnnotationExport>;
  /** One SQS receive (throws when no queue is configured). */
  receiveSqs(signal?: AbortSignal): Promise<ReceiveSummary>;
  /** poll mode: listing passes every `pollIntervalMs` plus the worker, until `signal` aborts. */
  runPoll(signal: AbortSignal): Promise<void>;
  /** events mode: SQS consumer (if configured), reconciling lists and the worker. */
  runEvents(signal: AbortSignal): Promise<void>;
  /** Backfill: one listing pass, the configured annotation files, then drain the queue. */
  runOnce(opts?: Omit<WorkOptions, "once">): Promise<IngestOnceSummary>;
  /** Refreshes `sluice_ingest_queue_depth`. */
  refreshQueueDepth(): Promise<void>;
  /** Releases what the stage created itself (its SQS client); the deps stay open. */
  close(): Promise<void>;
}

/**
 * The stage logger as `log.level` / `log.format` configure it.
 *
 * @example
 * ```ts
 * const log = createIngestLogger(config);
 * ```
 */
export function createIngestLogger(config: IngestConfig): Logger {
  return createStageLogger("ingest", config.log);
}

/** Stage dependencies, any of which may be left out to be opened from the configuration. */
export type GivenIngestDeps = Partial<IngestDeps>;

/**
 * Opens whatever `given` lacks from `config` (manifest, source store, dataset store, staging)
 * and builds the stage on them; its `close()` also closes what was opened here.
 *
 * @example
 * ```ts
 * const stage = await openIngestStage(config, {}, log);
 * try { await stage.runOnce(); } finally { await stage.close(); }
 * ```
 */
export async function openIngestStage(
  config: IngestConfig,
  given: GivenIngestDeps,
  log: Logger = given.log ?? createIngestLogger(config),
): Promise<IngestStage> {
  const metrics = given.metrics ?? createStageMetrics("ingest");
  const res = await openResources(config, ingestResources(given), {
    stage: "ingest",
    log,
    metrics,
    source: true,
  });
  const stage = createIngestStage(config, {
    ...given,
    manifest: res.manifest,
    source: res.source,
    objectStore: res.store,
    staging: res.staging,
    metrics,
    log,
  });
  res.closers.add("ingest stage", () => stage.close());
  return { ...stage, close: () => res.close() };
}

/** The kit's names for ingest's dependencies (the dataset store is `objectStore` here). */
function ingestResources(given: GivenIngestDeps): GivenResources {
  return {
    manifest: given.manifest,
    store: given.objectStore,
    source: given.source,
    staging: given.staging,
  };
}

/** Runs `step` now and then every `everyMs` until `signal` aborts; failures are logged. */
async function every(
  log: Logger,
  name: string,
  everyMs: number,
  signal: AbortSignal,
  step: () => Promise<unknown>,
): Promise<void> {
  while (!signal.aborted) {
    try {
      await step();
    } catch (err) {
      log.error(`${name} failed`, { reason: reasonOf(err), error: messageOf(err) });
    }
    if (everyMs <= 0) break;
    await sleep(everyMs, signal);
  }
}

/**
 * /healthz, /readyz, /metrics, `HEAD /`, `POST /events` when the webhook is on, and
 * `POST /labelstudio/webhook` when `reviewWebhookToken` is set (Label Studio reviews).
 */
function ingestHandler(
  s: IngestConfig["stage"],
  manifest: ManifestStore,
  metrics: IngestMetrics,
  log: Logger,
  recordEvents: (parsed: ParsedNotification, origin: EventOrigin) => Promise<ApplySummary>,
  /** `http.hostname`: a non-loopback bind refuses a webhook without a token. */
  httpHostname: string,
): StageHandler {
  const routes: Record<string, RouteHandler> = {};
  const webhook = webhookAuth(s, log);
  if (webhook) {
    routes["POST /events"] = createWebhookRoute({
      ...webhook,
      publicBind: !isLoopback(httpHostname),
      maxBodyBytes: s.maxEventBodyBytes,
      record: (parsed) => recordEvents(parsed, "webhook"),
      metrics,
      log,
    });
  }
  if (s.reviewWebhookToken) {
    routes["POST /labelstudio/webhook"] = createLabelStudioWebhookRoute({
      token: s.reviewWebhookToken,
      manifest,
      maxBodyBytes: s.maxEventBodyBytes,
      dataKey: s.reviewDataKey,
      log,
    });
  }
  return createStageHandler({
    stage: "ingest",
    metrics: metrics.stage,
    log,
    routes,
    ready: async () => {
      await manifest.workCounts("ingest");
      return true;
    },
  });
}

/** The SQS client for `ingest.sqsQueueUrl`: the one given, or one built on first use. */
class LazySqsClient {
  readonly #config: IngestConfig;
  #client: SQSClient | undefined;
  #own = false;

  constructor(config: IngestConfig, given?: SQSClient) {
    this.#config = config;
    this.#client = given;
  }

  /** The client, built from the shared S3 settings and `ingest.sqsEndpoint` on first use. */
  client(): SQSClient {
    if (!this.#client) {
      const s = this.#config.stage;
      this.#client = new SQSClient(awsClientOptions({
        ...(s.sqsEndpoint ? { endpoint: s.sqsEndpoint } : {}),
        ...awsConnectionOf(this.#config.s3),
        // Above the long-poll wait, so a quiet queue is not a dead socket.
        idleTimeoutMs: (s.sqsWaitSeconds + 10) * 1000,
      }));
      this.#own = true;
    }
    return this.#client;
  }

  /** Destroys the client when it was built here. */
  close(): void {
    if (this.#own) this.#client?.destroy();
  }
}

/** The SQS consumer's options (throws when `ingest.sqsQueueUrl` is not set). */
function sqsOptionsOf(
  s: IngestConfig["stage"],
  sqs: LazySqsClient,
  recordEvents: (parsed: ParsedNotification, origin: EventOrigin) => Promise<ApplySummary>,
  metrics: IngestMetrics,
  log: Logger,
) {
  if (!s.sqsQueueUrl) {
    throw new Error("ingest.sqsQueueUrl is not set: no SQS queue to receive from");
  }
  return {
    client: sqs.client(),
    queueUrl: s.sqsQueueUrl,
    waitTimeSeconds: s.sqsWaitSeconds,
    maxMessages: s.sqsMaxMessages,
    ...(s.sqsVisibilityTimeoutS !== undefined
      ? { visibilityTimeoutS: s.sqsVisibilityTimeoutS }
      : {}),
    record: (parsed: ParsedNotification) => recordEvents(parsed, "sqs"),
    metrics,
    log,
  };
}

/** Runs the worker loop on the `ingest` queue; each item's content lock ends with its outcome. */
function workIngestQueue(
  queueStage: QueueStage,
  opts: WorkOptions,
  process: (claim: Claim, ctx: ItemContext) => Promise<Effects>,
  contentLocks: ContentLocks,
  metrics: IngestMetrics,
  staging: Pick<Staging, "root" | "minFreeBytes">,
): Promise<QueueSummary> {
  return runQueue(queueStage, {
    queue: "ingest",
    batchSize: queueStage.worker.batchSize,
    depthEveryMs: 10_000,
    ...(opts.signal ? { signal: opts.signal } : {}),
    once: opts.once ?? false,
    permanentCodes: INGEST_PERMANENT_CODES,
    ...(opts.progress !== undefined ? { progress: opts.progress } : {}),
    // Full staging is back-pressure: claim nothing below the floor, release a full-disk item.
    ...stagingBackpressure({
      root: staging.root,
      minFreeBytes: staging.minFreeBytes,
      log: queueStage.log,
    }),
    process,
    onResult: (claim, result) => {
      contentLocks.release(claim.itemId);
      if (result.outcome === "failed") {
        metrics.failures.inc({ reason: result.reason ?? "internal" });
      }
    },
  });
}

/**
 * With a Label Studio review project configured, the loop that reconciles its reviews every
 * `reviewReconcileIntervalMs` until `signal` aborts; otherwise `null`.
 */
function reviewReconcileLoop(
  s: IngestConfig["stage"],
  manifest: IngestDeps["manifest"],
  log: Logger,
  signal: AbortSignal,
): Promise<unknown> | null {
  const { reviewLabelStudioUrl: url, reviewApiToken: apiToken, reviewProjectId } = s;
  if (!url || !apiToken || !reviewProjectId) return null;
  return every(log, "review reconcile", s.reviewReconcileIntervalMs, signal, async () => {
    const r = await reconcileLabelStudioReviews({
      manifest,
      url,
      apiToken,
      projectId: reviewProjectId,
      dataKey: s.reviewDataKey,
      signal,
    });
    log.info("label studio reviews reconciled", { ...r });
  });
}

/** One processor for `processItem`, and the worker's, which holds a content lock per item. */
function itemProcessors(deps: ProcessDeps) {
  const process = createItemProcessor(deps);
  // The worker's own processor holds a content lock per item until its outcome is recorded.
  const contentLocks = new ContentLocks();
  const workerProcess = createItemProcessor({ ...deps, contentLocks });
  return { process, workerProcess, contentLocks };
}

/** The stage's discovery pass in the configured mode (list, prefixes or inventory). */
function discoverFor(
  config: IngestConfig,
  deps: Pick<DiscoverOptions, "manifest" | "source" | "location" | "metrics" | "log">,
) {
  const s = config.stage;
  return (opts: { reconcile?: boolean; maxObjects?: number; signal?: AbortSignal } = {}) =>
    discoverByMode(
      s,
      { ...deps, pageSize: s.pageSize, ...opts },
      (uri) => openObjectStore(uri, { s3: config.s3 }),
    );
}

/**
 * Builds the stage.
 *
 * @example
 * ```ts
 * const stage = createIngestStage(config, deps);
 * Deno.serve(stage.handler.fetch);
 * ```
 */
export function createIngestStage(config: IngestConfig, deps: IngestDeps): IngestStage {
  const s = config.stage;
  const log = deps.log ?? createIngestLogger(config);
  const metrics = createIngestMetrics(deps.metrics ?? createStageMetrics("ingest"));
  const { manifest, source, objectStore, staging } = deps;
  if (s.reviewWebhookToken || s.reviewLabelStudioUrl) {
    registerReviewMetrics(metrics.stage.registry, manifest);
  }
  const location = sourceLocation({
    sourceUrl: source.url,
    prefix: s.prefix,
    suffixes: config.source.suffixes,
    ...(s.eventBucket ? { eventBucket: s.eventBucket } : {}),
  });
  const fused = fusedRenderFor(s, manifest, deps.normalize);
  const { process, workerProcess, contentLocks } = itemProcessors({
    manifest,
    source,
    objectStore,
    staging,
    settings: s,
    metrics,
    cpu: new Slots(ingestDecodeSlots()),
    fused,
  });

  const sqs = new LazySqsClient(config, deps.sqsClient);

  const recordEvents = (parsed: ParsedNotification, origin: EventOrigin) =>
    applySourceEvents(parsed.events, { manifest, source, location, origin, metrics, log });

  const handler = ingestHandler(s, manifest, metrics, log, recordEvents, config.http.hostname);

  const queueStage = {
    name: "ingest",
    manifest,
    log,
    metrics: metrics.stage,
    worker: config.worker,
  };
  const refreshQueueDepth = async () => {
    await refreshDepth(queueStage, "ingest");
  };

  const work = (opts: WorkOptions = {}): Promise<QueueSummary> =>
    workIngestQueue(queueStage, opts, workerProcess, contentLocks, metrics, staging);

  const importer = createAnnotationImporter({
    manifest,
    settings: s,
    read: { source, s3: config.s3 },
    metrics,
    log,
  });
  const { importOne, importConfigured } = importer;

  const discover = discoverFor(config, { manifest, source, location, metrics, log });

  const sqsOptions = () => sqsOptionsOf(s, sqs, recordEvents, metrics, log);

  return {
    config,
    metrics,
    log,
    location,
    handler,
    discover,
    recordEvents,
    processItem: process,
    work,
    importAnnotations: importOne,
    importConfiguredAnnotations: importConfigured,
    exportAnnotations: (opts) => exportAnnotations(manifest, opts),
    receiveSqs: (signal) => receiveOnce(sqsOptions(), signal),
    async runPoll(signal) {
      await Promise.all([
        work({ signal, progress: {} }),
        every(log, "listing pass", s.pollIntervalMs, signal, async () => {
          // A pass cut short by shutdown resumes from its checkpoint next time.
          const r = await discover({ signal });
          if (r.complete) await importConfigured({ onlyIfNeeded: true });
          await refreshQueueDepth();
        }),
      ]);
    },
    async runEvents(signal) {
      const tasks: Promise<unknown>[] = [
        work({ signal, progress: {} }),
        every(log, "reconciling list", s.reconcileIntervalMs, signal, async () => {
          await discover({ reconcile: true, signal });
          await refreshQueueDepth();
        }),
      ];
      if (s.sqsQueueUrl) tasks.push(runSqsConsumer({ ...sqsOptions(), signal }));
      const reviews = reviewReconcileLoop(s, manifest, log, signal);
      if (reviews) tasks.push(reviews);
      await Promise.all(tasks);
    },
    async runOnce(opts = {}) {
      const { signal } = opts;
      const discovered = await discover(signal ? { signal } : {});
      const annotations = await importConfigured();
      const worker = await work({ ...opts, once: true });
      const images = (await manifest.stats()).images;
      log.info("ingest once finished", { ...worker, images });
      return { discovered, annotations, worker, images };
    },
    refreshQueueDepth,
    async close() {
      sqs.close();
      await fused?.close();
    },
  };
}
