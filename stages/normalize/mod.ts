/**
 * Stage 2, normalize: renders every ingested image's variants (sizes, fit modes, formats) from
 * one decode, with the exact transform of each stored in the manifest so that annotations map
 * into and out of variant space.
 *
 * The default export is a `deno serve`-compatible `{ fetch }`: on its first request it loads
 * the configuration from the environment (`SLUICE_*`, `SLUICE_CONFIG`), starts the worker loop
 * in the background and answers /healthz, /readyz, /metrics, /status; SIGTERM or SIGINT drains
 * the worker (claims released) and exits. `main.ts` is the command-line entry.
 *
 * @example
 * ```ts
 * // deno serve -A stages/normalize/mod.ts
 * import { runNormalizeOnce } from "./stages/normalize/mod.ts";
 * const summary = await runNormalizeOnce(config, { manifest, store });
 * ```
 * @module
 */
import { loadConfigDetailed } from "../../common/config/mod.ts";
import { messageOf } from "../../common/errors/mod.ts";
import type { StageHandler } from "../../common/http/mod.ts";
import { createLogger } from "../../common/log/mod.ts";
import { shutdownSignal } from "../../common/worker/mod.ts";
import { effectiveConcurrency, NormalizeSettingsSchema } from "./config.ts";
import { createNormalizeStage } from "./stage.ts";
import { refuseOtherHosts } from "../../common/http/serve_entry_guard.ts";

export * from "./config.ts";
export * from "./stage.ts";
export * from "./backfill.ts";
export * from "./metrics.ts";
export * from "./normalize_image.ts";
export * from "./render_variants.ts";
export * from "./source_key.ts";
export * from "./spec_registry.ts";
export * from "./variant_keys.ts";

let started: Promise<StageHandler> | undefined;

/** Starts the stage from the process environment, for `deno serve`. */
async function startFromEnvironment(): Promise<StageHandler> {
  const { config, sources } = await loadConfigDetailed({
    stage: "normalize",
    stageSchema: NormalizeSettingsSchema,
  });
  const stage = await createNormalizeStage(config, {
    concurrency: effectiveConcurrency(config, sources),
  });
  const log = createLogger({ stage: "normalize", level: config.log.level });
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
