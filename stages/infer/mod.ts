/**
 * Stage 4, infer: predicts boxes on every ingested image that has no human annotation and no
 * prediction from the approved model version, and writes them for human review (Label Studio
 * pre-annotations, COCO results, manifest rows). The approved model comes from the MLflow
 * registry (alias, then approval tag, then the legacy Production stage) and is followed as the
 * alias moves.
 *
 * The default export is a `deno serve`-compatible `{ fetch }`: on its first request it loads
 * the configuration from the environment (`SLUICE_*`, `SLUICE_CONFIG`), starts the worker loop
 * in the background and answers /healthz, /readyz, /metrics, /status; SIGTERM or SIGINT drains
 * the worker (claims released) and exits. `main.ts` is the command-line entry.
 *
 * @example
 * ```ts
 * // deno serve -A stages/infer/mod.ts
 * import { evaluate, runInferOnce } from "./stages/infer/mod.ts";
 * const summary = await runInferOnce(config, { manifest, store });
 * const report = await evaluate({ gt: "holdout.json", manifest, model: summary.model! });
 * ```
 * @module
 */
import { loadConfig } from "../../common/config/mod.ts";
import { serveEntry } from "../../common/stage/mod.ts";
import { InferSettingsSchema } from "./config.ts";
import { createInferStage } from "./stage.ts";

export * from "./config.ts";
export * from "./stage.ts";
export * from "./evaluate.ts";
export * from "./inference_engine.ts";
export * from "./inputs.ts";
export * from "./labelstudio_push.ts";
export * from "./metrics.ts";
export * from "./model_card.ts";
export * from "./model_loader.ts";
export * from "./model_resolver.ts";
export * from "./outputs.ts";
export * from "./postprocess.ts";
export * from "./predicted_images.ts";
export { DetectorSession, InferenceError } from "./detector_session.ts";

/** `deno serve` entry: the first request starts the stage (see the module documentation). */
export default serveEntry(async () => {
  const config = await loadConfig({ stage: "infer", stageSchema: InferSettingsSchema });
  const stage = await createInferStage(config);
  return {
    handler: stage.handler,
    log: stage.log,
    run: (signal) => stage.run({ signal }),
    close: () => stage.close(),
  };
});
