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
import { messageOf } from "../../common/errors/mod.ts";
import type { StageHandler } from "../../common/http/mod.ts";
import { shutdownSignal } from "../../common/worker/mod.ts";
import { TrainSettingsSchema } from "./config.ts";
import { createTrainLogger, createTrainStage } from "./stage.ts";
import { refuseOtherHosts } from "../../common/http/serve_entry_guard.ts";

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

let started: Promise<StageHandler> | undefined;

/** Starts the worker from the process environment, for `deno serve`. */
async function startFromEnvironment(): Promise<StageHandler> {
  const config = await loadConfig({ stage: "train", stageSchema: TrainSettingsSchema });
  const stage = await createTrainStage(config);
  const log = createTrainLogger(config);
  const shutdown = shutdownSignal();
  stage.work({ signal: shutdown.signal })
    .then((summary) => log.info("worker finished", { ...summary }))
    .catch((err) => log.error("worker stopped with an error", { error: messageOf(err) }))
    .finally(async () => {
      await stage.close();
      shutdown.dispose();
      // deno serve keeps serving on its own: the worker is what this process is for.
      Deno.exit(shutdown.signal.aborted ? 0 : 1);
    });
  return stage.handler;
}

/** `deno serve` entry: the first request starts the stage (see the module documentation). */
const serve: { fetch(req: Request): Promise<Response> } = {
  async fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    const refused = refuseOtherHosts(info); // deno serve binds 0.0.0.0: honour SLUICE_HTTP_HOSTNAME
    if (refused) return refused;
    started ??= startFromEnvironment();
    let handler: StageHandler;
    try {
      handler = await started;
    } catch (err) {
      started = undefined;
      return Response.json({ error: "not_started", message: messageOf(err) }, { status: 503 });
    }
    return await handler.fetch(req);
  },
};

export default serve;
