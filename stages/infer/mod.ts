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
import { messageOf } from "../../common/errors/mod.ts";
import type { StageHandler } from "../../common/http/mod.ts";
import { createLogger } from "../../common/log/mod.ts";
import { shutdownSignal } from "../../common/worker/mod.ts";
import { InferSettingsSchema } from "./config.ts";
import { createInferStage } from "./stage.ts";
import { refuseOtherHosts } from "../../common/http/serve_entry_guard.ts";

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

let started: Promise<StageHandler> | undefined;

/** Starts the stage from the process environment, for `deno serve`. */
async function startFromEnvironment(): Promise<StageHandler> {
  const config = await loadConfig({ stage: "infer", stageSchema: InferSettingsSchema });
  const stage = await createInferStage(config);
  const log = createLogger({ stage: "infer", level: config.log.level });
  const shutdown = shutdownSignal();
  stage.run({ signal: shutdown.signal })
    .then((summary) =>
      log.info("worker finished", { ...summary, failures: summary.failures.length })
    )
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
      // Let the next request (a readiness probe, usually) try again.
      started = undefined;
      return Response.json({ error: "not_started", message: messageOf(err) }, { status: 503 });
    }
    return await handler.fetch(req);
  },
};

export default serve;
