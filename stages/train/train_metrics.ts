/**
 * The train stage's Prometheus metrics (`sluice_train_…`), on top of the common stage metrics:
 * throughput, epoch, step, loss, validation mAP, progress of the current run, and run outcomes.
 *
 * @example
 * ```ts
 * const m = createTrainMetrics();
 * m.imagesPerSecond.set(31.2);
 * m.map.set({ iou: "0.5" }, 0.82);
 * console.log(await m.stage.metrics());
 * ```
 * @module
 */
import type { Counter, Gauge } from "prom-client";
import { createStageMetrics, type StageMetrics } from "../../common/metrics/mod.ts";

export interface TrainMetrics {
  readonly stage: StageMetrics;
  /** Training images per second over all ranks, as the trainer last reported it. */
  readonly imagesPerSecond: Gauge<never>;
  readonly epoch: Gauge<never>;
  readonly step: Gauge<never>;
  /** Mean training loss over the last reporting interval. */
  readonly loss: Gauge<never>;
  /** Validation mAP by IoU threshold (`0.5`, `0.5:0.95`). */
  readonly map: Gauge<"iou">;
  /** Fraction of the current run's schedule done (0..1). */
  readonly progress: Gauge<never>;
  /** 1 while a run is training. */
  readonly running: Gauge<never>;
  /** Runs finished, by `result` (promoted, candidate, failed, prepared). */
  readonly runsTotal: Counter<"result">;
  /** Metric values sent to the tracker. */
  readonly trackedMetricsTotal: Counter<never>;
}

/**
 * Registers the train metrics in `stage` (default: a new `train` registry).
 *
 * @example
 * ```ts
 * const m = createTrainMetrics(createStageMetrics("train", { version: "1.0.0" }));
 * ```
 */
export function createTrainMetrics(
  stage: StageMetrics = createStageMetrics("train"),
): TrainMetrics {
  return {
    stage,
    imagesPerSecond: stage.gauge({
      name: "images_per_second",
      help: "Training images per second over all ranks (last trainer report)",
    }),
    epoch: stage.gauge({ name: "epoch", help: "Current epoch of the running training" }),
    step: stage.gauge({ name: "step", help: "Optimizer steps done in the running training" }),
    loss: stage.gauge({
      name: "loss",
      help: "Mean training loss over the last reporting interval",
    }),
    map: stage.gauge({
      name: "val_map",
      help: "Validation mean average precision of the last evaluated model, by IoU threshold",
      labelNames: ["iou"],
    }),
    progress: stage.gauge({
      name: "progress_ratio",
      help: "Fraction of the running training's schedule done",
    }),
    running: stage.gauge({ name: "running", help: "1 while a training run is in progress" }),
    runsTotal: stage.counter({
      name: "runs_total",
      help: "Training runs finished, by result (promoted, candidate, failed, prepared)",
      labelNames: ["result"],
    }),
    trackedMetricsTotal: stage.counter({
      name: "tracked_metrics_total",
      help: "Metric values sent to the experiment tracker",
    }),
  };
}
