/**
 * Stage 3, train: snapshots the manifest, writes the trainer's inputs (COCO in variant pixels,
 * per-node shard lists) to the training store, stages them on NVMe, launches the PyTorch trainer
 * (local processes with torch.distributed, or k8s / systemd definitions for multi-host runs),
 * streams its metrics to MLflow, registers the ONNX model with alias `candidate` and promotes it
 * to the approved alias when its validation mAP@0.5 clears the threshold and the champion.
 *
 * The default export is a `deno serve`-compatible `{ fetch }`: on its first request it loads the
 * configuration from the environment (`SLUICE_*`, `SLUICE_CONFIG`), starts the worker that
 * claims training requests from the `train` queue, and answers /healthz, /readyz, /metrics,
 * /status; SIGTERM or SIGINT stops it (a running trainer is killed, the request released).
 * `main.ts` is the command-line entry.
 *
 * @example
 * ```ts
 * import { runTraining } from "./stages/train/mod.ts";
 * const { runId, modelVersion, map50, map50_95, promoted } = await runTraining(config, { manifest });
 * ```
 * @module
 */
import { loadConfig } from "../../common/config/mod.ts";
import { serveEntry } from "../../common/stage/mod.ts";
import { TrainSettingsSchema } from "./config.ts";
import { createTrainStage } from "./stage.ts";

export * from "./config.ts";
export * from "./stage.ts";
export {
  type NodeOptions,
  prepareTraining,
  type TrainDeps,
  type TrainingResult,
  trainNode,
  trainOnce,
  writeDefinitions,
} from "./run_training.ts";
export * from "./promotion.ts";
export * from "./train_metrics.ts";
export type { ShardReport } from "./run_observer.ts";

/** `deno serve` entry: the first request starts the stage (see the module documentation). */
export default serveEntry(async () => {
  const config = await loadConfig({ stage: "train", stageSchema: TrainSettingsSchema });
  const stage = await createTrainStage(config);
  return {
    handler: stage.handler,
    log: stage.log,
    run: (signal) => stage.work({ signal }),
    close: () => stage.close(),
  };
});
