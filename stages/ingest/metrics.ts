/**
 * The ingest stage's own Prometheus metrics (all `sluice_ingest_*`), registered on the stage
 * registry next to the common ones (items, durations, queue depth, staging, errors).
 *
 * @example
 * ```ts
 * const m = createIngestMetrics(createStageMetrics("ingest"));
 * m.objectsSeen.inc({ via: "list" });
 * ```
 * @module
 */
import type { Counter, Histogram } from "prom-client";
import type { StageMetrics } from "../../common/metrics/mod.ts";

export interface IngestMetrics {
  /** The common stage metrics (registry, items, errors, queue depth, staging). */
  readonly stage: StageMetrics;
  /** Source objects seen, by how: `list`, `reconcile`, `webhook`, `sqs`. */
  readonly objectsSeen: Counter<"via">;
  /** Objects found by a reconciling list that no event had announced (new or changed). */
  readonly foundByReconcile: Counter<never>;
  /** Images ingested (published, not duplicates). */
  readonly ingested: Counter<never>;
  /** Images whose content was already ingested under another source key. */
  readonly duplicates: Counter<never>;
  /** Items failed for good, by reason (SluiceError code). */
  readonly failures: Counter<"reason">;
  /** Images ingested although the decoder warned (the warning is on the image row). */
  readonly decodeWarnings: Counter<never>;
  /** Source bytes of ingested and duplicate images. */
  readonly bytes: Counter<never>;
  /** Augmented copies written. */
  readonly augmentations: Counter<never>;
  /** Images whose normalize variants ingest rendered and recorded (`renderVariants`). */
  readonly fusedRenders: Counter<never>;
  /** Notification records, by `source` (webhook, sqs) and `result`. */
  readonly events: Counter<"source" | "result">;
  /** Time from the event (its `eventTime`) to its being recorded. */
  readonly eventLag: Histogram<"source">;
  /** SQS messages by `result` (deleted, kept, unrecognised). */
  readonly sqsMessages: Counter<"result">;
  /** Annotation file imports by `format` and `result` (imported, failed, skipped). */
  readonly annotationImports: Counter<"format" | "result">;
  /** Imported annotation records by `result` (matched, unmatched, ambiguous, unreadable). */
  readonly annotationRecords: Counter<"result">;
  /**
   * Shapes skipped or changed while reading annotation files (unknown category, malformed box,
   * cancelled annotation, unsupported result type, ...).
   */
  readonly annotationProblems: Counter<never>;
  /** Imported boxes by box-policy `outcome` (kept, clamped, dropped, polygon_removed). */
  readonly annotationBoxes: Counter<"outcome">;
}

/** Seconds: 10 ms to 1 hour, for how late events arrive. */
const LAG_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600];

// One set per registry: a registry refuses a second metric of the same name, and several stage
// objects (a CLI stage and a backfill, tests) may share one registry.
const registered = new WeakMap<StageMetrics, IngestMetrics>();

/**
 * Registers the ingest metrics on a stage registry; later calls with the same registry return
 * the same metrics.
 *
 * @example
 * ```ts
 * const metrics = createIngestMetrics(createStageMetrics("ingest", { version }));
 * ```
 */
export function createIngestMetrics(stage: StageMetrics): IngestMetrics {
  const known = registered.get(stage);
  if (known) return known;
  const metrics: IngestMetrics = {
    stage,
    objectsSeen: stage.counter({
      name: "objects_seen_total",
      help: "Source objects seen, by how they were found (list, reconcile, webhook, sqs).",
      labelNames: ["via"],
    }),
    foundByReconcile: stage.counter({
      name: "found_by_reconcile_total",
      help: "New or changed objects that a reconciling list found and no event had announced.",
    }),
    ingested: stage.counter({ name: "objects_ingested_total", help: "Images ingested." }),
    duplicates: stage.counter({
      name: "duplicates_total",
      help: "Images whose content was already ingested under another key.",
    }),
    failures: stage.counter({
      name: "failures_total",
      help: "Items failed for good, by reason.",
      labelNames: ["reason"],
    }),
    decodeWarnings: stage.counter({
      name: "decode_warnings_total",
      help: "Images that decoded with warnings (e.g. Corrupt JPEG data), recorded on the row.",
    }),
    bytes: stage.counter({ name: "bytes_total", help: "Source bytes of ingested images." }),
    augmentations: stage.counter({
      name: "augmentations_total",
      help: "Augmented copies written.",
    }),
    fusedRenders: stage.counter({
      name: "fused_renders_total",
      help: "Images whose normalize variants ingest rendered and recorded (fused ingest).",
    }),
    events: stage.counter({
      name: "events_total",
      help: "S3 notification records by source (webhook, sqs) and result.",
      labelNames: ["source", "result"],
    }),
    eventLag: stage.histogram({
      name: "event_lag_seconds",
      help: "Seconds from an S3 event to its being recorded in the manifest.",
      labelNames: ["source"],
      buckets: LAG_BUCKETS,
    }),
    sqsMessages: stage.counter({
      name: "sqs_messages_total",
      help: "SQS messages by result (deleted, kept, unrecognised).",
      labelNames: ["result"],
    }),
    annotationImports: stage.counter({
      name: "annotation_imports_total",
      help: "Annotation file imports by format and result.",
      labelNames: ["format", "result"],
    }),
    annotationRecords: stage.counter({
      name: "annotation_records_total",
      help: "Annotation records (tasks, COCO images) by match result.",
      labelNames: ["result"],
    }),
    annotationProblems: stage.counter({
      name: "annotation_problems_total",
      help: "Shapes skipped or changed while reading annotation files.",
    }),
    annotationBoxes: stage.counter({
      name: "annotation_boxes_total",
      help: "Imported boxes by box-policy outcome.",
      labelNames: ["outcome"],
    }),
  };
  registered.set(stage, metrics);
  return metrics;
}
