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
import { createHash } from "node:crypto";
import { SQSClient } from "@aws-sdk/client-sqs";
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import { createStageHandler, type RouteHandler, type StageHandler } from "../../common/http/mod.ts";
import { createLogger, type Logger } from "../../common/log/mod.ts";
import type { Claim, Effects, ManifestStore } from "../../common/manifest/mod.ts";
import { createStageMetrics, type StageMetrics } from "../../common/metrics/mod.ts";
import type { ObjectStore, OpenOptions } from "../../common/objectstore/mod.ts";
import { awsClientOptions } from "../../common/objectstore/s3.ts";
import type { Staging } from "../../common/staging/mod.ts";
import {
  type ItemContext,
  type ProgressOptions,
  runWorker,
  type WorkerSummary,
} from "../../common/worker/mod.ts";
import { type AnnotationReadOptions, readAnnotationText } from "./annotation_source.ts";
import {
  type AnnotationExport,
  exportAnnotations,
  type ExportOptions,
} from "./annotations_export.ts";
import {
  type AnnotationImportSummary,
  importAnnotations,
  importCheckpointName,
  readImportRecord,
} from "./annotations_import.ts";
import { applySourceEvents, type ApplySummary, type EventOrigin } from "./apply_events.ts";
import type { AnnotationFormat, IngestConfig } from "./config.ts";
import { discoverSource, type DiscoverSummary } from "./discover.ts";
import { createIngestMetrics, type IngestMetrics } from "./metrics.ts";
import { createItemProcessor, INGEST_PERMANENT_CODES } from "./process_item.ts";
import type { ParsedNotification } from "./s3_event.ts";
import { type SourceLocation, sourceLocation } from "./source_location.ts";
import { receiveOnce, type ReceiveSummary, runSqsConsumer } from "./sqs_consumer.ts";
import { createWebhookRoute } from "./webhook.ts";
import { webhookAuth } from "./webhook_auth.ts";
import { ContentLocks } from "./_content_locks.ts";
import { sleep } from "./_sleep.ts";

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
  const format = config.log.format;
  return createLogger({
    stage: "ingest",
    level: config.log.level,
    ...(format === "auto" ? {} : { json: format === "json" }),
  });
}

/**
 * S3 client options for `openObjectStore` from the shared `s3` section.
 *
 * @example
 * ```ts
 * const source = await openObjectStore(config.source.url, s3OpenOptions(config));
 * ```
 */
export function s3OpenOptions(config: IngestConfig): OpenOptions {
  // The shared section is accepted as is (session token and part size in MiB included).
  return { s3: config.s3 };
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
  const location = sourceLocation({
    sourceUrl: source.url,
    prefix: s.prefix,
    suffixes: config.source.suffixes,
    ...(s.eventBucket ? { eventBucket: s.eventBucket } : {}),
  });
  const processDeps = { manifest, source, objectStore, staging, settings: s, metrics };
  const process = createItemProcessor(processDeps);
  // The worker's own processor holds a content lock per item until its outcome is recorded.
  const contentLocks = new ContentLocks();
  const workerProcess = createItemProcessor({ ...processDeps, contentLocks });
  const readOpts: AnnotationReadOptions = { source, s3: s3OpenOptions(config).s3 };
  const boxPolicy = {
    outOfBounds: s.boxOutOfBounds,
    minSize: s.minBoxSize,
    ...(s.labels ? { labels: s.labels } : {}),
  };
  const importOpts = {
    boxPolicy,
    labelStudioChoose: s.labelStudioChoose,
    metrics,
    log,
  };

  let sqs = deps.sqsClient;
  let ownSqs = false;
  const sqsClient = () => {
    if (!sqs) {
      sqs = new SQSClient(awsClientOptions({
        ...(s.sqsEndpoint ? { endpoint: s.sqsEndpoint } : {}),
        region: config.s3.region,
        ...(config.s3.accessKeyId && config.s3.secretAccessKey
          ? {
            accessKeyId: config.s3.accessKeyId,
            secretAccessKey: config.s3.secretAccessKey,
            ...(config.s3.sessionToken ? { sessionToken: config.s3.sessionToken } : {}),
          }
          : {}),
        // Above the long-poll wait, so a quiet queue is not a dead socket.
        idleTimeoutMs: (s.sqsWaitSeconds + 10) * 1000,
      }));
      ownSqs = true;
    }
    return sqs;
  };

  const recordEvents = (parsed: ParsedNotification, origin: EventOrigin) =>
    applySourceEvents(parsed.events, { manifest, source, location, origin, metrics, log });

  const routes: Record<string, RouteHandler> = {};
  const webhook = webhookAuth(s, log);
  if (webhook) {
    routes["POST /events"] = createWebhookRoute({
      ...webhook,
      maxBodyBytes: s.maxEventBodyBytes,
      record: (parsed) => recordEvents(parsed, "webhook"),
      metrics,
      log,
    });
  }
  const handler = createStageHandler({
    stage: "ingest",
    metrics: metrics.stage,
    log,
    routes,
    ready: async () => {
      await manifest.workCounts("ingest");
      return true;
    },
  });

  const refreshQueueDepth = async () => {
    try {
      const counts = (await manifest.workCounts("ingest")).ingest ?? {};
      for (const state of ["pending", "leased", "done", "failed"] as const) {
        metrics.stage.queueDepth.set({ state }, counts[state] ?? 0);
      }
    } catch (err) {
      log.warn("could not read the queue depth", { error: messageOf(err) });
    }
  };

  const work = async (opts: WorkOptions = {}): Promise<WorkerSummary> => {
    await refreshQueueDepth();
    const depthTimer = setInterval(() => void refreshQueueDepth(), 10_000);
    try {
      return await runWorker({
        manifest,
        stage: "ingest",
        owner: config.worker.id,
        concurrency: config.worker.concurrency,
        batchSize: config.worker.batchSize,
        leaseMs: config.worker.leaseMs,
        maxAttempts: config.worker.maxAttempts,
        idlePollMs: config.worker.idlePollMs,
        log,
        ...(opts.signal ? { signal: opts.signal } : {}),
        once: opts.once ?? false,
        permanentCodes: INGEST_PERMANENT_CODES,
        ...(opts.progress !== undefined ? { progress: opts.progress } : {}),
        process: workerProcess,
        onResult: (claim, result, ms) => {
          contentLocks.release(claim.itemId);
          metrics.stage.itemsTotal.inc({ result: result.outcome });
          metrics.stage.itemDurationSeconds.observe(ms / 1000);
          if (result.reason && (result.outcome === "failed" || result.outcome === "retried")) {
            metrics.stage.errorsTotal.inc({ reason: result.reason });
          }
          if (result.outcome === "failed") {
            metrics.failures.inc({ reason: result.reason ?? "internal" });
          }
        },
      });
    } finally {
      clearInterval(depthTimer);
      await refreshQueueDepth();
    }
  };

  const importOne = async (
    ref: string,
    format: AnnotationFormat | "auto" = "auto",
    opts: { preferLocal?: boolean; cwd?: string } = {},
  ): Promise<AnnotationImportSummary> => {
    let text: string;
    let file: string;
    try {
      ({ text, file } = await readAnnotationText(ref, { ...readOpts, ...opts }));
    } catch (err) {
      const summary: AnnotationImportSummary = {
        file: ref,
        format: format === "auto" ? null : format,
        status: "failed",
        reason: reasonOf(err),
        message: messageOf(err),
        sha256: "",
        records: 0,
        matched: 0,
        unmatched: [],
        ambiguous: [],
        annotations: 0,
        boxes: {},
        recordFailures: [],
        problems: 0,
        problemExamples: [],
        at: Date.now(),
      };
      log.warn("annotation file unreadable", {
        file: ref,
        reason: summary.reason,
        error: summary.message,
      });
      metrics.stage.errorsTotal.inc({ reason: summary.reason! });
      metrics.annotationImports.inc({ format: summary.format ?? "unknown", result: "failed" });
      await manifest.setCheckpoint(importCheckpointName(ref), JSON.stringify(summary));
      return summary;
    }
    return await importAnnotations({ manifest, text, file, format, ...importOpts });
  };

  const importConfigured = async (
    opts: { onlyIfNeeded?: boolean } = {},
  ): Promise<AnnotationImportSummary[]> => {
    const out: AnnotationImportSummary[] = [];
    for (const entry of s.annotations) {
      const ref = typeof entry === "string" ? entry : entry.uri;
      const format = typeof entry === "string" ? "auto" : entry.format;
      if (opts.onlyIfNeeded) {
        const summary = await importIfNeeded(ref, format);
        if (summary) out.push(summary);
      } else {
        out.push(await importOne(ref, format));
      }
    }
    return out;
  };

  const importIfNeeded = async (ref: string, format: AnnotationFormat | "auto") => {
    let text: string;
    let file: string;
    try {
      ({ text, file } = await readAnnotationText(ref, readOpts));
    } catch {
      return await importOne(ref, format);
    }
    const last = await readImportRecord(manifest, file);
    const sha = createHash("sha256").update(text).digest("hex");
    if (
      last && last.sha256 === sha &&
      (last.status === "failed" ||
        (last.unmatched.length === 0 && (last.ambiguous ?? []).length === 0))
    ) {
      metrics.annotationImports.inc({ format: last.format ?? "unknown", result: "skipped" });
      return null;
    }
    return await importAnnotations({ manifest, text, file, format, ...importOpts });
  };

  const discover = (
    opts: { reconcile?: boolean; maxObjects?: number; signal?: AbortSignal } = {},
  ) =>
    discoverSource({
      manifest,
      source,
      location,
      pageSize: s.pageSize,
      metrics,
      log,
      ...opts,
    });

  const sqsOptions = () => {
    if (!s.sqsQueueUrl) {
      throw new Error("ingest.sqsQueueUrl is not set: no SQS queue to receive from");
    }
    return {
      client: sqsClient(),
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
  };

  /** Runs `step` now and then every `everyMs` until `signal` aborts; failures are logged. */
  const every = async (
    name: string,
    everyMs: number,
    signal: AbortSignal,
    step: () => Promise<unknown>,
  ) => {
    while (!signal.aborted) {
      try {
        await step();
      } catch (err) {
        log.error(`${name} failed`, { reason: reasonOf(err), error: messageOf(err) });
      }
      if (everyMs <= 0) break;
      await sleep(everyMs, signal);
    }
  };

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
        every("listing pass", s.pollIntervalMs, signal, async () => {
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
        every("reconciling list", s.reconcileIntervalMs, signal, async () => {
          await discover({ reconcile: true, signal });
          await refreshQueueDepth();
        }),
      ];
      if (s.sqsQueueUrl) tasks.push(runSqsConsumer({ ...sqsOptions(), signal }));
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
    close() {
      if (ownSqs) sqs?.destroy();
      return Promise.resolve();
    },
  };
}
