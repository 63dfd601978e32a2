/**
 * The infer stage's metrics: the common `sluice_infer_*` set (items by result, item durations,
 * queue depth, staging bytes and free space, errors) plus the model in use
 * (`sluice_infer_model_info{model,version,alias} 1`), batch sizes, inference, preparation and
 * post-processing time, detections, model swaps and Label Studio pushes.
 *
 * @example
 * ```ts
 * const m = createInferMetrics();
 * m.setModel({ name: "det", version: "3", alias: "champion" });
 * m.batchSize.observe(8);
 * ```
 * @module
 */
import type { Counter, Gauge, Histogram } from "prom-client";
import { createStageMetrics, type StageMetrics } from "../../common/metrics/mod.ts";
import type { WorkState } from "../../common/manifest/mod.ts";

/** Detection score buckets (0.05 … 1). */
export const SCORE_BUCKETS: readonly number[] = [
  0.05,
  0.1,
  0.2,
  0.3,
  0.4,
  0.5,
  0.6,
  0.7,
  0.8,
  0.9,
  0.95,
  1,
];

/** Batch-size buckets (images). */
export const BATCH_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128];
/** Per-batch inference time buckets, seconds. */
export const INFERENCE_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
];

export interface InferMetrics extends StageMetrics {
  /** Always 1; labels name the model version in use and the alias that chose it. */
  readonly modelInfo: Gauge<"model" | "version" | "alias">;
  /** Images per inference batch. */
  readonly batchSize: Histogram<never>;
  /** `session.run` time per batch. */
  readonly inferenceSeconds: Histogram<never>;
  /** Decode + letterbox time per image. */
  readonly preprocessSeconds: Histogram<never>;
  /** Box decoding + mapping time per batch. */
  readonly postprocessSeconds: Histogram<never>;
  /** Boxes recorded. */
  readonly detectionsTotal: Counter<never>;
  /** Boxes predicted, by class label (each prediction, as it is made). */
  readonly predictionsByClassTotal: Counter<"label">;
  /** Scores of the boxes predicted (the distribution a threshold cuts). */
  readonly detectionScore: Histogram<never>;
  /** Times the model in use changed (alias moved, approval changed). */
  readonly modelSwapsTotal: Counter<never>;
  /** Label Studio import calls, by result (ok, failed). */
  readonly labelStudioPushTotal: Counter<"result">;
  /** Output files (Label Studio tasks, COCO results) published. */
  readonly outputsPublishedTotal: Counter<never>;
  /** Counts one prediction's boxes by class and observes their scores. */
  observeBoxes(boxes: readonly { label: string; score: number }[]): void;
  /** Sets `model_info` to this model alone. */
  setModel(ref: { name: string; version: string; alias: string | null }): void;
  /** Sets `queue_depth` from a work-count row (missing states are 0). */
  setQueueDepth(counts: Partial<Record<WorkState, number>> | undefined): void;
}

/**
 * Creates the registry of the infer stage.
 *
 * @example
 * ```ts
 * const m = createInferMetrics({ version: "1.0.0" });
 * console.log(await m.metrics());
 * ```
 */
export function createInferMetrics(opts: { version?: string } = {}): InferMetrics {
  const base = createStageMetrics("infer", { version: opts.version });
  const modelInfo = base.gauge({
    name: "model_info",
    help: "The model version in use; the value is always 1.",
    labelNames: ["model", "version", "alias"],
  });
  const predictionsByClassTotal = base.counter({
    name: "predictions_by_class_total",
    help: "Boxes predicted, by class label.",
    labelNames: ["label"],
  });
  const detectionScore = base.histogram({
    name: "detection_score",
    help: "Scores of the boxes predicted.",
    buckets: SCORE_BUCKETS,
  });
  const extra = {
    modelInfo,
    batchSize: base.histogram({
      name: "batch_size",
      help: "Images per inference batch.",
      buckets: BATCH_BUCKETS,
    }),
    inferenceSeconds: base.histogram({
      name: "inference_seconds",
      help: "Time onnxruntime spent on one batch, in seconds.",
      buckets: INFERENCE_BUCKETS,
    }),
    preprocessSeconds: base.histogram({
      name: "preprocess_seconds",
      help: "Time to decode and letterbox one image, in seconds.",
      buckets: INFERENCE_BUCKETS,
    }),
    postprocessSeconds: base.histogram({
      name: "postprocess_seconds",
      help: "Time to decode boxes and map them back for one batch, in seconds.",
      buckets: INFERENCE_BUCKETS,
    }),
    detectionsTotal: base.counter({
      name: "detections_total",
      help: "Boxes recorded as predictions.",
    }),
    predictionsByClassTotal,
    detectionScore,
    observeBoxes(boxes: readonly { label: string; score: number }[]) {
      for (const b of boxes) {
        predictionsByClassTotal.inc({ label: b.label });
        detectionScore.observe(b.score);
      }
    },
    modelSwapsTotal: base.counter({
      name: "model_swaps_total",
      help: "Times the model in use was replaced by a newly approved version.",
    }),
    labelStudioPushTotal: base.counter({
      name: "labelstudio_push_total",
      help: "Label Studio task imports, by result.",
      labelNames: ["result"],
    }),
    outputsPublishedTotal: base.counter({
      name: "outputs_published_total",
      help: "Times the Label Studio and COCO output files were written.",
    }),
    setModel(ref: { name: string; version: string; alias: string | null }) {
      modelInfo.reset();
      modelInfo.set({ model: ref.name, version: ref.version, alias: ref.alias ?? "" }, 1);
    },
    setQueueDepth(counts: Partial<Record<WorkState, number>> | undefined) {
      for (const state of ["pending", "leased", "done", "failed"] as const) {
        base.queueDepth.set({ state }, counts?.[state] ?? 0);
      }
    },
  };
  return Object.assign(base, extra);
}
