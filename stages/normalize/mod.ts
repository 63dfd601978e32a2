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
import { serveEntry } from "../../common/stage/mod.ts";
import { effectiveConcurrency, NormalizeSettingsSchema } from "./config.ts";
import { createNormalizeStage } from "./stage.ts";

export * from "./config.ts";
export * from "./stage.ts";
export * from "./backfill.ts";
export * from "./metrics.ts";
export * from "./normalize_image.ts";
export * from "./render_variants.ts";
export * from "./source_key.ts";
export * from "./spec_registry.ts";
export * from "./variant_keys.ts";

/** `deno serve` entry: the first request starts the stage (see the module documentation). */
export default serveEntry(async () => {
  const { config, sources } = await loadConfigDetailed({
    stage: "normalize",
    stageSchema: NormalizeSettingsSchema,
  });
  const stage = await createNormalizeStage(config, {
    concurrency: effectiveConcurrency(config, sources),
  });
  return {
    handler: stage.handler,
    log: stage.log,
    run: (signal) => stage.run({ signal }),
    close: () => stage.close(),
  };
});
